package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// TestDeliveriesCommand runs `homes deliveries` and `homes deliveries
// redrive` against a real database: the listing shows the counts and the
// failed deliveries, and the filters re-queue only what they name.
func TestDeliveriesCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	db, err := pg.Open(ctx, url, pg.PoolConfig{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	insert := func(flatID int32, email, state string) (id int64) {
		t.Helper()
		err := db.NewRaw(`
			INSERT INTO deliveries (flat_id, email, house_id, house_address, flat_number, rooms, price, event_id, approved_at,
			                        state, attempts, last_error, sent_at)
			VALUES (?, ?, 1, 'x', 1, 1, 1, 'ev', now(), ?, 10, E'send smtp: 550 no such user\nfailed to close', CASE WHEN ? = 'sent' THEN now() END)
			RETURNING id`, flatID, email, state, state).Scan(ctx, &id)
		if err != nil {
			t.Fatalf("insert delivery: %v", err)
		}
		return id
	}
	a := insert(41, "a@example.com", "failed")
	insert(41, "b@example.com", "failed")
	insert(42, "c@example.com", "failed")
	insert(42, "d@example.com", "sent")

	cfg := app.Config{DatabaseURL: url, DBMaxConns: 2}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	homes := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := deliveriesCmd(ctx, cfg, log, args, &out)
		return out.String(), err
	}

	out, err := homes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pending 0, sending 0, sent 1, failed 3",
		"a@example.com", "b@example.com", "c@example.com",
		"send smtp: 550 no such user failed to close", // one line per delivery
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "d@example.com") {
		t.Errorf("listing shows a sent delivery:\n%s", out)
	}
	if out, _ := homes("--limit", "1"); !strings.Contains(out, "and 2 more") || strings.Contains(out, "b@example.com") {
		t.Errorf("limited listing:\n%s", out)
	}
	if out, _ := homes("--flat", "42"); strings.Contains(out, "a@example.com") || !strings.Contains(out, "c@example.com") {
		t.Errorf("listing of flat 42:\n%s", out)
	}

	for _, tc := range []struct {
		args       []string
		want       string
		failedLeft int
	}{
		{[]string{"redrive", "--id", strconv.FormatInt(a, 10)}, "re-queued 1 failed deliveries", 2},
		{[]string{"redrive", "--flat", "42"}, "re-queued 1 failed deliveries", 1},
		{[]string{"redrive", "--flat", "42"}, "re-queued 0 failed deliveries", 1},
		{[]string{"redrive"}, "re-queued 1 failed deliveries", 0},
	} {
		out, err := homes(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("homes deliveries %v = %q, %v; want %q", tc.args, out, err, tc.want)
		}
		var failed int
		if err := db.NewRaw("SELECT count(*) FROM deliveries WHERE state = 'failed'").Scan(ctx, &failed); err != nil {
			t.Fatal(err)
		}
		if failed != tc.failedLeft {
			t.Errorf("after %v: %d failed, want %d", tc.args, failed, tc.failedLeft)
		}
	}
	var pending int
	if err := db.NewRaw("SELECT count(*) FROM deliveries WHERE state = 'pending' AND attempts = 0").Scan(ctx, &pending); err != nil || pending != 3 {
		t.Errorf("%d deliveries pending with fresh attempts, want 3 (%v)", pending, err)
	}

	for _, args := range [][]string{
		{"--flat", "many"},
		{"--flat", "99999999999"},
		{"redrive", "--limit", "3"},
		{"purge"},
	} {
		if _, err := homes(args...); err == nil {
			t.Errorf("homes deliveries %v: accepted", args)
		}
	}
}
