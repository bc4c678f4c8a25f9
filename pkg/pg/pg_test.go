package pg_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

func TestMigrationsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	n, err := pg.Pending(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("fresh test database has %d pending migrations, want 0", n)
	}
	rolled, err := pg.MigrateDown(ctx, db)
	if err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	if len(rolled) == 0 {
		t.Fatal("migrate down rolled back nothing")
	}
	var status bytes.Buffer
	if err := pg.PrintStatus(ctx, db, &status); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status.String(), "pending") {
		t.Fatalf("status after down shows nothing pending:\n%s", status.String())
	}
	applied, err := pg.MigrateUp(ctx, db)
	if err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if len(applied) != len(rolled) {
		t.Fatalf("re-applied %d migrations, rolled back %d", len(applied), len(rolled))
	}
}

func TestEachTestGetsItsOwnDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	var nameA, nameB string
	if err := a.QueryRowContext(ctx, "SELECT current_database()").Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRowContext(ctx, "SELECT current_database()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("two calls share database %s", nameA)
	}
}
