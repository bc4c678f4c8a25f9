// Package seed fills a database with a realistic catalogue at a given size
// (homes seed): houses with a skewed number of flats, statuses that are
// mostly approved, optional developers, subscriptions. It loads with COPY
// into tables stripped of their secondary indexes and foreign keys, then
// rebuilds them from their own saved definitions and runs ANALYZE, so that
// 20,000,000 flats take minutes.
package seed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says what to make.
type Config struct {
	Flats         int64   // flats in total
	MeanFlats     float64 // mean flats per house (lognormal); 0 means 80
	MaxFlats      int     // most flats in one house; 0 means 10,000
	Subscriptions int64   // subscriptions in total; -1 means Flats/200
	Approved      float64 // share of approved flats; 0 means 0.85
	Seed          uint64  // random seed; the same seed makes the same catalogue
	// Reset empties houses, flats and subscriptions first; without it the
	// catalogue must be empty.
	Reset bool
}

func (c *Config) defaults() error {
	if c.Flats < 0 {
		return errors.New("flats must be >= 0")
	}
	if c.MeanFlats == 0 {
		c.MeanFlats = 80
	}
	if c.MaxFlats == 0 {
		c.MaxFlats = 10_000
	}
	if c.Subscriptions < 0 {
		c.Subscriptions = c.Flats / 200
	}
	if c.Approved == 0 {
		c.Approved = 0.85
	}
	if c.MeanFlats < 1 || c.MaxFlats < 1 || c.Approved < 0 || c.Approved > 1 {
		return errors.New("mean flats and max flats must be >= 1, approved between 0 and 1")
	}
	return nil
}

// Report is what Run made.
type Report struct {
	Houses        int64            `json:"houses"`
	Flats         int64            `json:"flats"`
	Subscriptions int64            `json:"subscriptions"`
	ByStatus      map[string]int64 `json:"flats_by_status"`
	WithDeveloper int64            `json:"houses_with_developer"`
	// FlatsPerHouse gives quantiles of the skew: p50, p90, p99, max.
	FlatsPerHouse map[string]int     `json:"flats_per_house"`
	Steps         map[string]float64 `json:"seconds"` // time of each step
	TableBytes    map[string]int64   `json:"bytes"`   // table and index sizes after load
}

// Run loads the catalogue cfg describes into the database at url, which
// must already carry the schema (homes seed applies migrations first).
// progress, when not nil, receives a line per step.
func Run(ctx context.Context, url string, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	rep := &Report{ByStatus: map[string]int64{}, Steps: map[string]float64{}, TableBytes: map[string]int64{}}
	step := func(name string, start time.Time) {
		d := time.Since(start)
		rep.Steps[name] = math.Round(d.Seconds()*10) / 10
		_, _ = fmt.Fprintf(progress, "seed: %-40s %6.1fs\n", name, d.Seconds())
	}
	// Session settings for a bulk load: large sort memory for the index
	// builds, parallel builds, no wait for WAL flush on commit.
	for _, s := range []string{
		"SET maintenance_work_mem = '1GB'",
		"SET max_parallel_maintenance_workers = 2",
		"SET synchronous_commit = off",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}

	// One transaction: TRUNCATE then COPY ... FREEZE writes the rows frozen
	// and all-visible, so index-only scans need no VACUUM after the load, and
	// a failed seed leaves the catalogue as it was.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	start := time.Now()
	if !cfg.Reset {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM houses LIMIT 1) h").Scan(&n); err != nil {
			return nil, fmt.Errorf("count houses: %w", err)
		}
		if n > 0 {
			return nil, errors.New("the catalogue is not empty: seed an empty database, or pass --reset to replace it")
		}
	}
	if _, err := tx.Exec(ctx, "TRUNCATE houses, flats, subscriptions RESTART IDENTITY"); err != nil {
		return nil, fmt.Errorf("truncate: %w", err)
	}
	saved, err := dropSecondary(ctx, tx, "flats", "subscriptions")
	if err != nil {
		return nil, err
	}
	step("prepare", start)

	g := newGenerator(cfg)
	start = time.Now()
	houses := g.plan()
	rep.Houses = int64(len(houses))
	rep.FlatsPerHouse = quantiles(houses)
	n, err := copyIn(ctx, tx, "houses (id, address, year, developer, created_at, update_at, flats_count)",
		func(w *bufio.Writer) error { return g.writeHouses(w, houses, &rep.WithDeveloper) })
	if err != nil {
		return nil, fmt.Errorf("copy houses: %w", err)
	}
	step(fmt.Sprintf("copy %d houses", n), start)

	start = time.Now()
	n, err = copyIn(ctx, tx, "flats (id, house_id, number, price, rooms, status, moderator_id, created_at, updated_at)",
		func(w *bufio.Writer) error { return g.writeFlats(w, houses, rep.ByStatus) })
	if err != nil {
		return nil, fmt.Errorf("copy flats: %w", err)
	}
	rep.Flats = n
	step(fmt.Sprintf("copy %d flats", n), start)

	start = time.Now()
	n, err = copyIn(ctx, tx, "subscriptions (house_id, email)",
		func(w *bufio.Writer) error { return g.writeSubscriptions(w, len(houses), cfg.Subscriptions) })
	if err != nil {
		return nil, fmt.Errorf("copy subscriptions: %w", err)
	}
	rep.Subscriptions = n
	step(fmt.Sprintf("copy %d subscriptions", n), start)

	for _, d := range saved {
		start = time.Now()
		if _, err := tx.Exec(ctx, d.create); err != nil {
			return nil, fmt.Errorf("recreate %s: %w", d.name, err)
		}
		step("build "+d.name, start)
	}
	for _, seq := range []string{"houses", "flats"} {
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), GREATEST((SELECT max(id) FROM %[1]s), 1), (SELECT count(*) > 0 FROM %[1]s))", seq)
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("move %s id sequence: %w", seq, err)
		}
	}
	start = time.Now()
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	step("commit", start)

	start = time.Now()
	if _, err := conn.Exec(ctx, "ANALYZE houses, flats, subscriptions"); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	step("analyze", start)

	rows, err := conn.Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c
		WHERE c.relname IN ('houses', 'flats', 'subscriptions')
		   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ('houses'::regclass, 'flats'::regclass, 'subscriptions'::regclass))`)
	if err != nil {
		return nil, fmt.Errorf("sizes: %w", err)
	}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return nil, fmt.Errorf("sizes: %w", err)
		}
		rep.TableBytes[name] = size
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sizes: %w", err)
	}
	return rep, nil
}

// copyIn streams the rows write produces into target (a table and its
// column list) with COPY ... FREEZE on tx's connection: the rows arrive
// frozen and all-visible (the table was truncated in this transaction), so
// index-only scans need no VACUUM after the load.
func copyIn(ctx context.Context, tx pgx.Tx, target string, write func(w *bufio.Writer) error) (int64, error) {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 256<<10)
		err := write(w)
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, pr, "COPY "+target+" FROM STDIN WITH (FREEZE)")
	_ = pr.CloseWithError(io.ErrClosedPipe) // stops the writer if COPY failed early
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// definition is an index or constraint, saved to be rebuilt after the load.
type definition struct {
	name   string
	drop   string
	create string
}

// dropSecondary drops every index and constraint of tables except primary
// keys, NOT NULL and CHECK constraints, and returns the statements that
// rebuild them — read from the catalogue, so the seed never drifts from the
// migrations. Foreign keys are rebuilt last (their validation is one join).
func dropSecondary(ctx context.Context, tx pgx.Tx, tables ...string) ([]definition, error) {
	var defs, fks []definition
	for _, t := range tables {
		rows, err := tx.Query(ctx, `
			SELECT conname, pg_get_constraintdef(oid), contype::text FROM pg_constraint
			WHERE conrelid = $1::regclass AND contype IN ('u', 'f')
			ORDER BY contype DESC, conname`, t)
		if err != nil {
			return nil, fmt.Errorf("read constraints of %s: %w", t, err)
		}
		for rows.Next() {
			var name, def, kind string
			if err := rows.Scan(&name, &def, &kind); err != nil {
				return nil, fmt.Errorf("read constraints of %s: %w", t, err)
			}
			d := definition{
				name:   name,
				drop:   fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", pgx.Identifier{t}.Sanitize(), pgx.Identifier{name}.Sanitize()),
				create: fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pgx.Identifier{t}.Sanitize(), pgx.Identifier{name}.Sanitize(), def),
			}
			if kind == "f" {
				fks = append(fks, d)
			} else {
				defs = append(defs, d)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read constraints of %s: %w", t, err)
		}
		rows, err = tx.Query(ctx, `
			SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = $1::regclass AND NOT i.indisprimary
			  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
			ORDER BY c.relname`, t)
		if err != nil {
			return nil, fmt.Errorf("read indexes of %s: %w", t, err)
		}
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				return nil, fmt.Errorf("read indexes of %s: %w", t, err)
			}
			defs = append(defs, definition{name: name, drop: "DROP INDEX " + pgx.Identifier{name}.Sanitize(), create: def})
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read indexes of %s: %w", t, err)
		}
	}
	defs = append(defs, fks...)
	// Drop foreign keys first: a unique constraint may back one.
	for i := len(defs) - 1; i >= 0; i-- {
		if _, err := tx.Exec(ctx, defs[i].drop); err != nil {
			return nil, fmt.Errorf("drop %s: %w", defs[i].name, err)
		}
	}
	return defs, nil
}

func quantiles(houses []int32) map[string]int {
	sorted := make([]int, len(houses))
	for i, n := range houses {
		sorted[i] = int(n)
	}
	if len(sorted) == 0 {
		return map[string]int{}
	}
	sortInts(sorted)
	at := func(q float64) int { return sorted[int(q*float64(len(sorted)-1))] }
	return map[string]int{"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p99.9": at(0.999), "max": sorted[len(sorted)-1]}
}

func sortInts(a []int) {
	// counting sort: flats per house are small integers
	maxV := 0
	for _, v := range a {
		maxV = max(maxV, v)
	}
	counts := make([]int, maxV+1)
	for _, v := range a {
		counts[v]++
	}
	i := 0
	for v, c := range counts {
		for ; c > 0; c-- {
			a[i] = v
			i++
		}
	}
}

// rng is the generator's source; one per generator, not shared.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
