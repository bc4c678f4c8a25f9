// Command homes runs the Home Services backend: any subset of its services
// in one process on one port (all of them by default), its migrations, and
// its operator tools. Configuration comes from the environment only; `homes
// config` prints every variable with its default.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/pkg/pg"
)

const usage = `usage: homes <command>

commands:
  serve                 run the services named by HOMES_SERVICES on HOMES_ADDR
  migrate up|down|status apply, roll back (last group) or list migrations
  config                print every environment variable, default and meaning
  probe URL             exit 0 when URL answers 200 (container healthchecks: the image has no curl)
  seed [flags]          fill DATABASE_URL with a generated catalogue (homes seed -h)
  deliveries [redrive]  print the sender's deliveries by state and the failed ones, or re-queue failed ones (homes deliveries -h)
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "homes:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("missing command")
	}
	if args[0] == "config" {
		printSettings()
		return nil
	}
	if args[0] == "probe" {
		if len(args) != 2 {
			return fmt.Errorf("usage: homes probe URL")
		}
		return probe(args[1])
	}
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Sender, err = loadSenderConfig(os.Getenv); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "serve":
		return serve(ctx, cfg, log)
	case "seed":
		return seedCmd(ctx, cfg, log, args[1:])
	case "deliveries":
		return deliveriesCmd(ctx, cfg, log, args[1:], os.Stdout)
	case "migrate":
		if len(args) != 2 {
			return fmt.Errorf("usage: homes migrate up|down|status")
		}
		return migrate(ctx, cfg, log, args[1])
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func serve(ctx context.Context, cfg app.Config, log *slog.Logger) error {
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	return a.Run(ctx)
}

func migrate(ctx context.Context, cfg app.Config, log *slog.Logger, direction string) error {
	db, err := app.OpenDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	switch direction {
	case "up":
		applied, err := pg.MigrateUp(ctx, db)
		if err != nil {
			return err
		}
		fmt.Printf("applied %d migration(s) %v\n", len(applied), applied)
	case "down":
		rolled, err := pg.MigrateDown(ctx, db)
		if err != nil {
			return err
		}
		fmt.Printf("rolled back %d migration(s) %v\n", len(rolled), rolled)
	case "status":
		return pg.PrintStatus(ctx, db, os.Stdout)
	default:
		return fmt.Errorf("usage: homes migrate up|down|status")
	}
	return nil
}

// probe is a healthcheck client: GET url, success on 200.
func probe(url string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", url, resp.StatusCode)
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("HOMES_LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l})), nil
}
