package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/seed"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/devdb"
)

// seedCmd is `homes seed`: apply migrations, then fill the database with a
// generated catalogue (internal/seed) and print what it made.
func seedCmd(ctx context.Context, cfg app.Config, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	var c seed.Config
	fs.Int64Var(&c.Flats, "flats", 100_000, "flats in total")
	fs.Float64Var(&c.MeanFlats, "mean-flats", 80, "mean flats per house (lognormal: most houses small, a few with thousands)")
	fs.IntVar(&c.MaxFlats, "max-flats", 10_000, "most flats in one house")
	fs.Int64Var(&c.Subscriptions, "subscriptions", -1, "subscriptions in total (-1: flats/200)")
	fs.Float64Var(&c.Approved, "approved", 0.85, "share of approved flats; the rest are created, declined or on moderation")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: the same seed makes the same catalogue")
	fs.BoolVar(&c.Reset, "reset", false, "replace the houses, flats and subscriptions already there")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: homes seed [flags]   (DATABASE_URL names the database)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := cfg.DatabaseURL
	if url == "" {
		var err error
		if url, err = devdb.Ensure(ctx, cfg.DataDir, log); err != nil {
			return fmt.Errorf("find a database: %w", err)
		}
	}
	db, err := pg.Open(ctx, url, pg.PoolConfig{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	applied, err := pg.MigrateUp(ctx, db)
	_ = db.Close()
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		fmt.Printf("seed: applied %d migration(s) %v\n", len(applied), applied)
	}
	start := time.Now()
	rep, err := seed.Run(ctx, url, c, os.Stdout)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	printSeedReport(rep, time.Since(start))
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

func printSeedReport(r *seed.Report, took time.Duration) {
	fmt.Printf("\nseeded in %s:\n", took.Round(100*time.Millisecond))
	fmt.Printf("  houses         %12d  (%d with a developer)\n", r.Houses, r.WithDeveloper)
	fmt.Printf("  flats          %12d  per house p50 %d, p90 %d, p99 %d, p99.9 %d, max %d\n", r.Flats,
		r.FlatsPerHouse["p50"], r.FlatsPerHouse["p90"], r.FlatsPerHouse["p99"], r.FlatsPerHouse["p99.9"], r.FlatsPerHouse["max"])
	for _, s := range []string{"approved", "created", "on moderation", "declined"} {
		fmt.Printf("    %-13s %12d  (%.1f %%)\n", s, r.ByStatus[s], 100*float64(r.ByStatus[s])/float64(max(r.Flats, 1)))
	}
	fmt.Printf("  subscriptions  %12d\n", r.Subscriptions)
	names := make([]string, 0, len(r.TableBytes))
	for n := range r.TableBytes {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("  sizes:")
	for _, n := range names {
		fmt.Printf("    %-34s %8.1f MiB\n", n, float64(r.TableBytes[n])/(1<<20))
	}
}
