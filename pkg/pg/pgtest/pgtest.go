// Package pgtest gives every test its own freshly migrated PostgreSQL
// database, cloned from a template, so tests run in parallel and in any
// order. The server is DATABASE_URL when set, else the one devdb finds or
// starts.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/migrations"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/devdb"
)

// templateLockID serialises template creation across test processes.
const templateLockID = 7_203_118_641

var (
	once     sync.Once
	adminURL string
	tplName  string
	setupErr error
)

// URL creates a fresh migrated database for t and returns its URL. The
// database is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	ctx := context.Background()
	admin, err := pg.Open(ctx, adminURL, pg.PoolConfig{MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer func() { _ = admin.Close() }()
	name := "homes_test_" + randomSuffix()
	var lastErr error
	for range 20 { // a template in use by a concurrent clone answers "being accessed"
		_, lastErr = admin.ExecContext(ctx, "CREATE DATABASE ? TEMPLATE ?", bun.Ident(name), bun.Ident(tplName))
		if lastErr == nil || !strings.Contains(lastErr.Error(), "being accessed") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("pgtest: create database: %v", lastErr)
	}
	t.Cleanup(func() {
		drop, err := pg.Open(context.Background(), adminURL, pg.PoolConfig{MaxOpenConns: 1})
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer func() { _ = drop.Close() }()
		if _, err := drop.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name)); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(adminURL, name)
}

// New creates a fresh migrated database for t and opens it; both the pool
// and the database are gone when t ends.
func New(t testing.TB) *bun.DB {
	t.Helper()
	u := URL(t)
	db, err := pg.Open(context.Background(), u, pg.PoolConfig{MaxOpenConns: 20})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func setup() error {
	ctx := context.Background()
	adminURL = os.Getenv("DATABASE_URL")
	if adminURL == "" {
		dir, err := devdb.RepoDataDir()
		if err != nil {
			return err
		}
		adminURL, err = devdb.Ensure(ctx, dir, slog.Default())
		if err != nil {
			return err
		}
	}
	sum, err := migrationsHash()
	if err != nil {
		return err
	}
	tplName = "homes_tpl_" + sum[:16]
	admin, err := pg.Open(ctx, adminURL, pg.PoolConfig{MaxOpenConns: 2})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer func() { _ = admin.Close() }()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get connection: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", templateLockID); err != nil {
		return fmt.Errorf("lock template: %w", err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, "SELECT pg_advisory_unlock(?)", templateLockID) }()
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)", tplName).Scan(&exists); err != nil {
		return fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return nil
	}
	building := tplName + "_build"
	if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(building)); err != nil {
		return fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(building)); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	tpl, err := pg.Open(ctx, withDatabase(adminURL, building), pg.PoolConfig{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	_, err = pg.MigrateUp(ctx, tpl)
	_ = tpl.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE ? RENAME TO ?", bun.Ident(building), bun.Ident(tplName)); err != nil {
		return fmt.Errorf("publish template: %w", err)
	}
	return nil
}

// migrationsHash names the template after the migrations it holds, so a
// changed migration builds a new template.
func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the database"
	}
	return u.Redacted()
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
