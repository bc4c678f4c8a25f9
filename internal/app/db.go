package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/devdb"
)

// OpenDB connects to cfg's database (finding or starting a local one when
// DatabaseURL is empty). migrate and seed use it too.
func OpenDB(ctx context.Context, cfg Config, log *slog.Logger, opts ...pg.Option) (*bun.DB, error) {
	url := cfg.DatabaseURL
	if url == "" {
		var err error
		url, err = devdb.Ensure(ctx, cfg.DataDir, log)
		if err != nil {
			return nil, fmt.Errorf("find a database: %w", err)
		}
	}
	return pg.Open(ctx, url, pg.PoolConfig{MaxOpenConns: cfg.DBMaxConns}, opts...)
}

func (a *App) openDB(ctx context.Context) error {
	var opts []pg.Option
	if tracer := a.tel.QueryTracer(); tracer != nil {
		opts = append(opts, pg.WithTracer(tracer)) // a span per SQL statement
	}
	db, err := OpenDB(ctx, a.cfg, a.log, opts...)
	if err != nil {
		return err
	}
	a.db = db
	if a.cfg.Migrate {
		applied, err := pg.MigrateUp(ctx, db)
		if err != nil {
			_ = db.Close()
			return err
		}
		if len(applied) > 0 {
			a.log.Info("applied migrations", "migrations", applied)
		}
	}
	return nil
}
