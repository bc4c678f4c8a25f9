// Command homesload drives a running Home Services system over HTTP
// (internal/loadtest, on vegeta) and prints per-endpoint and total
// requests, achieved rate, success ratio and latency quantiles; it writes
// the results as JSON and a latency plot as HTML.
//
//	homesload -rate 1000 -duration 60s -mix get          # open model, listings only
//	homesload -rate 1000 -duration 60s -mix mixed        # the realistic mix
//	homesload -find-max -start 1000 -step 10s -mix get   # highest rate meeting the SLO
//	homesload -workers 64 -duration 30s -mix get         # closed loop, max throughput
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"

	"github.com/homeservices/homes/internal/loadtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "homesload:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg        loadtest.Config
		mix        string
		findMax    bool
		start      int
		bisect     int
		slo        loadtest.SLO
		out        string
		plotFile   string
		minSuccess float64
		gzip       bool
	)
	flag.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:8080", "base URL of the system")
	flag.IntVar(&cfg.Houses, "houses", 0, "house ids 1..N exist (0: max(id) of houses in DATABASE_URL)")
	flag.IntVar(&cfg.Rate, "rate", 1000, "arrivals per second (open model); 0 with -workers: closed loop")
	flag.IntVar(&cfg.Workers, "workers", 0, "closed loop with this many busy workers (sets -rate 0)")
	flag.DurationVar(&cfg.Duration, "duration", 60*time.Second, "length of the run (of each step with -find-max)")
	flag.StringVar(&mix, "mix", "mixed", `calls: "get" (client listings only), "mixed" (get=90,list=4,create=3,moderate=3) or name=weight,...`)
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's pid: report its CPU per request and peak RSS")
	flag.BoolVar(&findMax, "find-max", false, "search the highest rate meeting the SLO, from -start up")
	flag.IntVar(&start, "start", 1000, "first rate of -find-max")
	flag.IntVar(&bisect, "bisect", 3, "bisection steps of -find-max after the first failing rate")
	flag.DurationVar(&slo.P99, "p99", 50*time.Millisecond, "SLO: p99 latency at most this")
	flag.Float64Var(&slo.Success, "success", 0.9999, "SLO: success ratio at least this")
	flag.StringVar(&out, "out", "", "write the results as JSON to this file")
	flag.StringVar(&plotFile, "plot", "", "write the latency plot (HTML) to this file")
	flag.Float64Var(&minSuccess, "min-success", 0, "exit 1 when the total success ratio is below this (smoke tests)")
	flag.BoolVar(&gzip, "gzip", false, "ask for gzip-compressed answers (Accept-Encoding: gzip), as browsers do")
	flag.Parse()

	var err error
	if cfg.Mix, err = loadtest.ParseMix(mix); err != nil {
		return err
	}
	if cfg.Workers > 0 {
		cfg.Rate = 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.Houses == 0 {
		if cfg.Houses, err = countHouses(ctx, os.Getenv("DATABASE_URL")); err != nil {
			return err
		}
	}
	runner, err := loadtest.NewRunner(ctx, cfg.BaseURL, gzip)
	if err != nil {
		return err
	}

	var results any
	var last *loadtest.Result
	if findMax {
		steps, best, err := runner.Search(ctx, cfg, slo, start, bisect, os.Stdout)
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		fmt.Printf("\nhighest rate meeting p99 <= %s and success >= %.4f%%: %d/s\n", slo.P99, 100*slo.Success, best)
		results = map[string]any{"slo": map[string]any{"p99_ms": slo.P99.Milliseconds(), "success": slo.Success}, "best_rate": best, "steps": steps}
		if len(steps) > 0 {
			last = steps[len(steps)-1]
		}
	} else {
		var p *plot.Plot
		if plotFile != "" {
			p = plot.New(plot.Title(fmt.Sprintf("homesload: %s", describe(cfg, mix))), plot.Label(labeler))
		}
		res, err := runner.Run(ctx, cfg, p)
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		loadtest.PrintTable(os.Stdout, res)
		verdict := "meets"
		if !res.Meets(slo) {
			verdict = "misses"
		}
		fmt.Printf("SLO (p99 <= %s, success >= %.2f%%): %s\n", slo.P99, 100*slo.Success, verdict)
		results, last = res, res
		if p != nil {
			if err := writePlot(plotFile, p); err != nil {
				return err
			}
		}
	}
	if out != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if last != nil && last.Total.Success < minSuccess {
		return fmt.Errorf("success %.4f%% is below -min-success %.4f%%", 100*last.Total.Success, 100*minSuccess)
	}
	return nil
}

func describe(cfg loadtest.Config, mix string) string {
	if cfg.Rate <= 0 {
		return fmt.Sprintf("%s mix, closed loop with %d workers, %s", mix, cfg.Workers, cfg.Duration)
	}
	return fmt.Sprintf("%s mix at %d req/s for %s", mix, cfg.Rate, cfg.Duration)
}

// labeler names each plotted point by its endpoint, errors apart.
func labeler(r *vegeta.Result) string {
	ep := loadtest.EndpointOf(r)
	if r.Error != "" || r.Code < 200 || r.Code >= 400 {
		return ep + " (error)"
	}
	return ep
}

func writePlot(path string, p *plot.Plot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	p.Close()
	if _, err := p.WriteTo(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write plot: %w", err)
	}
	return f.Close()
}

// countHouses reads how many houses there are (ids 1..n after homes seed).
func countHouses(ctx context.Context, url string) (int, error) {
	if url == "" {
		return 0, errors.New("set -houses, or DATABASE_URL to count them")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("count houses: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM houses").Scan(&n); err != nil {
		return 0, fmt.Errorf("count houses: %w", err)
	}
	if n == 0 {
		return 0, errors.New("no houses: run homes seed first")
	}
	return n, nil
}
