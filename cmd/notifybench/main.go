// Command notifybench measures the notification pipeline end to end: one
// house with N subscribers (1,000 by default), one approval published through
// the outbox, the sender with its default settings and the mock mailer at the
// reference behaviour (up to 3 s per email, 10 % failures). It prints the time
// until every email is delivered, the peak number of database connections,
// and the approval-to-first-send-attempt latency (median over a series of
// separate small approvals, plus the big one).
//
// It works in a scratch database that it creates on the server given by
// -database-url (default $DATABASE_URL; when empty, the laptop server that
// devdb finds or starts), migrates, and drops at the end unless -keep.
//
//	go run ./cmd/notifybench [-subscribers 1000] [-latency-runs 21]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	"github.com/homeservices/homes/pkg/events"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/devdb"
	"github.com/homeservices/homes/services/sender"
)

func main() {
	var (
		dbURL       = flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL server to create the scratch database on (default $DATABASE_URL, else the devdb server)")
		subscribers = flag.Int("subscribers", 1000, "subscribers of the benchmark house")
		latencyRuns = flag.Int("latency-runs", 21, "separate one-subscriber approvals for the latency median")
		maxLatency  = flag.Duration("max-latency", 3*time.Second, "mock mailer: upper bound of one send")
		failureRate = flag.Float64("failure-rate", 0.1, "mock mailer: probability that a send fails")
		concurrency = flag.Int("concurrency", 0, "sender concurrency (0: the default)")
		poolSize    = flag.Int("pool", 20, "max open connections of the sender's pool")
		timeout     = flag.Duration("timeout", 5*time.Minute, "give up after this long")
		keep        = flag.Bool("keep", false, "keep the scratch database")
		verbose     = flag.Bool("v", false, "log the sender's info lines")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, options{
		dbURL: *dbURL, subscribers: *subscribers, latencyRuns: *latencyRuns,
		mock:        sender.MockConfig{MaxLatency: *maxLatency, FailureRate: *failureRate},
		concurrency: *concurrency, poolSize: *poolSize, keep: *keep, verbose: *verbose,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "notifybench:", err)
		os.Exit(1)
	}
}

type options struct {
	dbURL       string
	subscribers int
	latencyRuns int
	mock        sender.MockConfig
	concurrency int
	poolSize    int
	keep        bool
	verbose     bool
}

func run(ctx context.Context, o options) error {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	admin := o.dbURL
	if admin == "" {
		dir, err := devdb.RepoDataDir()
		if err != nil {
			return err
		}
		if admin, err = devdb.Ensure(ctx, dir, log); err != nil {
			return err
		}
	}
	dbURL, drop, err := scratchDatabase(ctx, admin, o.keep)
	if err != nil {
		return err
	}
	defer drop()

	db, err := pg.Open(ctx, dbURL, pg.PoolConfig{MaxOpenConns: o.poolSize})
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if _, err := pg.MigrateUp(ctx, db); err != nil {
		return err
	}
	dbName := mustDatabase(dbURL)

	bigHouse, bigFlat, err := seed(ctx, db, "Benchmark avenue 1", o.subscribers)
	if err != nil {
		return err
	}

	mock := o.mock
	mock.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := sender.DefaultConfig()
	if o.concurrency > 0 {
		cfg.Concurrency = o.concurrency
	}
	cfg.StatsInterval = 5 * time.Second
	s, err := sender.New(cfg, db, sender.NewMockMailer(mock), log)
	if err != nil {
		return err
	}

	// Peak connections: the pool's own count, and the server's view.
	var peakPool, peakServer atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Go(func() { samplePool(sampleCtx, db, &peakPool) })
	sampling.Go(func() { sampleServer(sampleCtx, admin, dbName, &peakServer) })

	runCtx, stopSender := context.WithCancel(ctx)
	senderDone := make(chan error, 1)
	go func() { senderDone <- s.Run(runCtx) }()
	defer func() {
		stopSender()
		<-senderDone
	}()
	time.Sleep(500 * time.Millisecond) // let it subscribe and LISTEN

	cfgNow := s.Config()
	fmt.Printf("notifybench: sender concurrency %d, poll %s, max attempts %d, backoff %s..%s; mock ≤ %s, failure rate %.2f; pool max %d\n",
		cfgNow.Concurrency, cfgNow.PollInterval, cfgNow.MaxAttempts, cfgNow.BackoffBase, cfgNow.BackoffMax,
		o.mock.MaxLatency, o.mock.FailureRate, o.poolSize)

	// 1. Latency: separate small approvals on an idle sender.
	var lat []time.Duration
	for i := range o.latencyRuns {
		h, f, err := seed(ctx, db, fmt.Sprintf("Latency lane %d", i+1), 1)
		if err != nil {
			return err
		}
		committed, err := approve(ctx, db, h, f)
		if err != nil {
			return err
		}
		first, err := waitFirstAttempt(ctx, db, f.id)
		if err != nil {
			return err
		}
		lat = append(lat, first.Sub(committed))
		time.Sleep(time.Duration(50+i*37%200) * time.Millisecond) // de-phase from the poll ticks
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		fmt.Printf("approval → first send attempt, %d separate approvals: median %s, p90 %s, max %s\n",
			len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[len(lat)-1]))
	}

	// 2. The fan-out.
	start := time.Now()
	committed, err := approve(ctx, db, bigHouse, bigFlat)
	if err != nil {
		return err
	}
	first, err := waitFirstAttempt(ctx, db, bigFlat.id)
	if err != nil {
		return err
	}
	for {
		var sent, failed int
		if err := db.NewRaw("SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'failed') FROM deliveries WHERE flat_id = ?", bigFlat.id).
			Scan(ctx, &sent, &failed); err != nil {
			return fmt.Errorf("count deliveries: %w", err)
		}
		if sent+failed >= o.subscribers {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for deliveries (%d sent): %w", sent, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	total := time.Since(start)
	stopSampling()
	sampling.Wait()

	var r struct {
		Sent, Failed, Attempts, Retried int
		P50, P90, Max                   float64
	}
	if err := db.NewRaw(`
		SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'failed'),
		       sum(attempts), count(*) FILTER (WHERE attempts > 1),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_attempt_at - ?::timestamptz)),
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_attempt_at - ?::timestamptz)),
		       max(extract(epoch FROM sent_at - ?::timestamptz))
		  FROM deliveries WHERE flat_id = ?`, committed, committed, committed, bigFlat.id).
		Scan(ctx, &r.Sent, &r.Failed, &r.Attempts, &r.Retried, &r.P50, &r.P90, &r.Max); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	fmt.Printf("fan-out of one approval to %d subscribers:\n", o.subscribers)
	fmt.Printf("  all delivered after   %s (last sent_at %s after commit)\n", ms(total), ms(secs(r.Max)))
	fmt.Printf("  sent %d, failed %d; %d attempts, %d deliveries retried\n", r.Sent, r.Failed, r.Attempts, r.Retried)
	fmt.Printf("  approval → first send attempt of the fan-out: %s\n", ms(first.Sub(committed)))
	fmt.Printf("  approval → each delivery's first attempt: median %s, p90 %s (bounded by concurrency)\n", ms(secs(r.P50)), ms(secs(r.P90)))
	fmt.Printf("peak database connections: %d in use from the pool (max open %d), %d server backends on the database\n",
		peakPool.Load(), o.poolSize, peakServer.Load())
	return nil
}

type flatRef struct{ id, number int32 }

// seed inserts a house with n subscribers and one flat on moderation.
func seed(ctx context.Context, db *bun.DB, address string, n int) (int32, flatRef, error) {
	var house int32
	var f flatRef
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewRaw("INSERT INTO houses (address, year, flats_count) VALUES (?, 2020, 1) RETURNING id", address).Scan(ctx, &house); err != nil {
			return fmt.Errorf("insert house: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO subscriptions (house_id, email) SELECT ?, 'buyer' || g || '@example.com' FROM generate_series(1, ?) AS g",
			house, n); err != nil {
			return fmt.Errorf("insert subscriptions: %w", err)
		}
		if err := tx.NewRaw("INSERT INTO flats (house_id, number, price, rooms) VALUES (?, 1, 7500000, 2) RETURNING id, number", house).
			Scan(ctx, &f.id, &f.number); err != nil {
			return fmt.Errorf("insert flat: %w", err)
		}
		return nil
	})
	return house, f, err
}

// approve approves the flat and publishes the event in one transaction, as
// the home service does, and returns the database time right after commit.
func approve(ctx context.Context, db *bun.DB, house int32, f flatRef) (time.Time, error) {
	out := events.NewOutbox(nil)
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var address string
		if err := tx.NewRaw("UPDATE flats AS f SET status = 'approved', updated_at = now() FROM houses AS h WHERE f.id = ? AND h.id = f.house_id RETURNING h.address", f.id).
			Scan(ctx, &address); err != nil {
			return fmt.Errorf("approve flat: %w", err)
		}
		return out.Publish(ctx, tx, &eventsv1.FlatStatusChanged{
			FlatId: f.id, HouseId: house, Number: f.number, Price: 7500000, Rooms: 2,
			OldStatus: "on moderation", NewStatus: "approved", HouseAddress: address,
			OccurredAt: timestamppb.Now(), ActorId: "notifybench",
		})
	})
	if err != nil {
		return time.Time{}, err
	}
	var now time.Time
	if err := db.NewRaw("SELECT clock_timestamp()").Scan(ctx, &now); err != nil {
		return time.Time{}, fmt.Errorf("read clock: %w", err)
	}
	return now, nil
}

// waitFirstAttempt returns the earliest first_attempt_at of the flat.
func waitFirstAttempt(ctx context.Context, db *bun.DB, flatID int32) (time.Time, error) {
	for {
		var first bun.NullTime
		if err := db.NewRaw("SELECT min(first_attempt_at) FROM deliveries WHERE flat_id = ?", flatID).Scan(ctx, &first); err != nil {
			return time.Time{}, fmt.Errorf("read first attempt: %w", err)
		}
		if !first.IsZero() {
			return first.Time, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for first attempt: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func samplePool(ctx context.Context, db *bun.DB, peak *atomic.Int64) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if n := int64(db.DB.Stats().InUse); n > peak.Load() {
			peak.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleServer counts the server's backends on the database (every
// connection of the pool, idle or not), from a connection to another one.
func sampleServer(ctx context.Context, admin, dbName string, peak *atomic.Int64) {
	adb, err := pg.Open(ctx, admin, pg.PoolConfig{MaxOpenConns: 1})
	if err != nil {
		return
	}
	defer func() { _ = adb.Close() }()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		var n int64
		if err := adb.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = ?", dbName).Scan(ctx, &n); err == nil && n > peak.Load() {
			peak.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scratchDatabase creates a fresh database on the admin server and returns
// its URL and a function that drops it.
func scratchDatabase(ctx context.Context, admin string, keep bool) (string, func(), error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "homes_bench_" + hex.EncodeToString(b)
	adb, err := pg.Open(ctx, admin, pg.PoolConfig{MaxOpenConns: 1})
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = adb.Close() }()
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("database url must be a postgres:// URL")
	}
	u.Path = "/" + name
	drop := func() {
		if keep {
			fmt.Printf("kept scratch database %s\n", name)
			return
		}
		adb, err := pg.Open(context.Background(), admin, pg.PoolConfig{MaxOpenConns: 1})
		if err != nil {
			return
		}
		defer func() { _ = adb.Close() }()
		_, _ = adb.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name))
	}
	return u.String(), drop, nil
}

func mustDatabase(raw string) string {
	u, _ := url.Parse(raw)
	return u.Path[1:]
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
