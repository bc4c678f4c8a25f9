package pg

import (
	"context"
	"fmt"
	"io"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/homeservices/homes/migrations"
)

// migrateLockID is the advisory lock that serialises migrations of
// concurrently starting processes.
const migrateLockID = 7_203_118_640

func newMigrator(db *bun.DB) (*migrate.Migrator, error) {
	migs := migrate.NewMigrations()
	if err := migs.Discover(migrations.FS); err != nil {
		return nil, fmt.Errorf("discover migrations: %w", err)
	}
	return migrate.NewMigrator(db, migs,
		migrate.WithTableName("schema_migrations"),
		migrate.WithLocksTableName("schema_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true),
	), nil
}

// withLock runs fn while holding a session advisory lock, so two processes
// starting at once do not race to create tables.
func withLock(ctx context.Context, db *bun.DB, fn func(m *migrate.Migrator) error) error {
	m, err := newMigrator(db)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get connection: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrateLockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrateLockID)
	}()
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	return fn(m)
}

// MigrateUp applies every pending migration and returns their names.
func MigrateUp(ctx context.Context, db *bun.DB) ([]string, error) {
	var applied []string
	err := withLock(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		for _, mig := range group.Migrations {
			applied = append(applied, mig.String())
		}
		return nil
	})
	return applied, err
}

// MigrateDown rolls back the last group of applied migrations.
func MigrateDown(ctx context.Context, db *bun.DB) ([]string, error) {
	var rolled []string
	err := withLock(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Rollback(ctx)
		if err != nil {
			return fmt.Errorf("roll back migrations: %w", err)
		}
		for _, mig := range group.Migrations {
			rolled = append(rolled, mig.String())
		}
		return nil
	})
	return rolled, err
}

// PrintStatus writes one line per migration: applied or pending.
func PrintStatus(ctx context.Context, db *bun.DB, w io.Writer) error {
	return withLock(ctx, db, func(m *migrate.Migrator) error {
		ms, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("read migration status: %w", err)
		}
		for _, mig := range ms {
			state := "pending"
			if mig.IsApplied() {
				state = "applied (group " + fmt.Sprint(mig.GroupID) + ")"
			}
			if _, err := fmt.Fprintf(w, "%-40s %s\n", mig.String(), state); err != nil {
				return fmt.Errorf("write status: %w", err)
			}
		}
		return nil
	})
}

// Pending reports how many migrations are not applied yet.
func Pending(ctx context.Context, db *bun.DB) (int, error) {
	m, err := newMigrator(db)
	if err != nil {
		return 0, err
	}
	// Not MissingMigrations: that lists applied ones the code lacks.
	all, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return 0, fmt.Errorf("read migration status: %w", err)
	}
	return len(all.Unapplied()), nil
}
