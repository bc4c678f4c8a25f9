// Package pg opens PostgreSQL through bun on pgx and applies the embedded
// migrations.
package pg

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// PoolConfig sizes the connection pool.
type PoolConfig struct {
	MaxOpenConns    int           // 0 means 4 per CPU, at least 8
	MaxIdleConns    int           // 0 means MaxOpenConns
	ConnMaxLifetime time.Duration // 0 means 30 minutes
}

// Option adjusts the pgx connection configuration of Open.
type Option func(*pgx.ConnConfig)

// WithTracer has pgx report every query, batch and connect to t (e.g. an
// OpenTelemetry tracer making a span per SQL statement).
func WithTracer(t pgx.QueryTracer) Option {
	return func(c *pgx.ConnConfig) { c.Tracer = t }
}

// Open connects to url (a postgres:// URL or key=value DSN) with pgx through
// database/sql, so that bun and watermill-sql share one *sql.DB, and pings it.
func Open(ctx context.Context, url string, pool PoolConfig, opts ...Option) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	sqldb := stdlib.OpenDB(*cfg)
	applyPool(sqldb, pool)
	db := bun.NewDB(sqldb, pgdialect.New())
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}

func applyPool(db *sql.DB, pool PoolConfig) {
	maxOpen := pool.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 20
	}
	maxIdle := pool.MaxIdleConns
	if maxIdle <= 0 {
		maxIdle = maxOpen
	}
	life := pool.ConnMaxLifetime
	if life <= 0 {
		life = 30 * time.Minute
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxLifetime(life)
}
