package sender_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/pgtest"
	"github.com/homeservices/homes/services/sender"
)

func TestCommittedApprovalNotifiesEachSubscriberOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	subs := emails("buyer", 5)
	h := house(t, db, "Lenina 1", subs)
	other := house(t, db, "Pushkina 2", emails("other", 2))
	f, num := flat(t, db, h)
	fo, numo := flat(t, db, other)

	rec := newRecorder()
	s := newSender(t, fastConfig(), db, rec)
	start(t, s)

	publish(t, db, h, f, num, "Lenina 1", "", "created", false)
	publish(t, db, h, f, num, "Lenina 1", "created", "on moderation", false)
	publish(t, db, h, f, num, "Lenina 1", "on moderation", "approved", false)
	publish(t, db, other, fo, numo, "Pushkina 2", "", "created", false)

	waitFor(t, 10*time.Second, "five sends", func() bool { return rec.total() >= 5 })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	assertOnce(t, rec.counts(), subs)
	assertOnce(t, sentRows(t, db, f), subs)

	m := rec.msgs[0]
	if m.FlatID != f || m.FlatNumber != num || m.HouseID != h || m.HouseAddress != "Lenina 1" || m.Rooms != 3 || m.Price != 5000000 {
		t.Errorf("message = %+v", m)
	}
	for _, want := range []string{"Lenina 1", "No. 1", "Rooms:  3", "Price:  5000000"} {
		if !strings.Contains(m.Subject()+m.Body(), want) {
			t.Errorf("email does not mention %q:\n%s\n%s", want, m.Subject(), m.Body())
		}
	}
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 5 || st.Failed != 0 || st.OldestOpenLag != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestOnlyCommittedApprovalsNotify(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	subs := emails("quiet", 3)
	h := house(t, db, "Tverskaya 3", subs)
	declined, n1 := flat(t, db, h)
	created, n2 := flat(t, db, h)
	rolledBack, n3 := flat(t, db, h)
	// A later committed approval elsewhere is the barrier: events are handled
	// in commit order, so once it is delivered the others were handled too.
	barrierSubs := []string{"barrier@example.com"}
	bh := house(t, db, "Arbat 4", barrierSubs)
	bf, bn := flat(t, db, bh)

	rec := newRecorder()
	s := newSender(t, fastConfig(), db, rec)
	start(t, s)

	publish(t, db, h, declined, n1, "Tverskaya 3", "on moderation", "declined", false)
	publish(t, db, h, created, n2, "Tverskaya 3", "", "created", false)
	publish(t, db, h, rolledBack, n3, "Tverskaya 3", "on moderation", "approved", true)
	publish(t, db, bh, bf, bn, "Arbat 4", "on moderation", "approved", false)

	waitFor(t, 10*time.Second, "the barrier send", func() bool { return rec.total() >= 1 })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	assertOnce(t, rec.counts(), barrierSubs)
	var rows int
	if err := db.NewRaw("SELECT count(*) FROM deliveries").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d delivery rows, want 1", rows)
	}
}

func TestMockMailerHalfFailuresStillSendEachOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	subs := emails("flaky", 20)
	h := house(t, db, "Nevsky 5", subs)
	f, num := flat(t, db, h)

	// The recorder counts what the mock let through.
	mock := sender.NewMockMailer(sender.MockConfig{
		MaxLatency: 5 * time.Millisecond, FailureRate: 0.5,
		Rand: rand.New(rand.NewPCG(1, 2)), Log: testLog(),
	})
	rec := newRecorder()
	rec.fail = func(m sender.Message) error { return mock.Send(context.Background(), m) }
	cfg := fastConfig()
	cfg.MaxAttempts = 40 // 0.5^40: never gives up in practice
	s := newSender(t, cfg, db, rec)
	start(t, s)

	publish(t, db, h, f, num, "Nevsky 5", "on moderation", "approved", false)
	waitFor(t, 20*time.Second, "all sent", func() bool { return rec.total() >= len(subs) })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	assertOnce(t, rec.counts(), subs)
	assertOnce(t, sentRows(t, db, f), subs)
	var retried int
	if err := db.NewRaw("SELECT count(*) FROM deliveries WHERE attempts > 1 AND last_error IS NOT NULL").Scan(context.Background(), &retried); err != nil {
		t.Fatal(err)
	}
	if retried == 0 {
		t.Error("no delivery was retried at a 50 % failure rate")
	}
}

func TestKillAndRestartMidFanOut(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	subs := emails("restart", 40)
	h := house(t, db, "Sadovaya 6", subs)
	f, num := flat(t, db, h)

	rec := newRecorder()
	rec.latency = func() time.Duration { return time.Duration(20+rand.IntN(30)) * time.Millisecond }
	cfg := fastConfig()
	cfg.Concurrency, cfg.ClaimBatch = 4, 4
	cfg.ShutdownGrace = time.Millisecond // cancel sends in flight
	first := newSender(t, cfg, db, rec)
	stop := start(t, first)

	publish(t, db, h, f, num, "Sadovaya 6", "on moderation", "approved", false)
	waitFor(t, 10*time.Second, "some sends", func() bool { return rec.total() >= 8 })
	stop()
	before := rec.total()
	if before >= len(subs) {
		t.Fatalf("the first sender finished the whole fan-out (%d) before it was stopped", before)
	}

	second := newSender(t, cfg, db, rec)
	start(t, second)
	waitFor(t, 20*time.Second, "all sent", func() bool { return rec.total() >= len(subs) })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, second))
	assertOnce(t, rec.counts(), subs)
	assertOnce(t, sentRows(t, db, f), subs)
	t.Logf("first sender sent %d of %d before it was stopped", before, len(subs))
}

func TestExpiredLeasesAreReclaimed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	cfg := fastConfig()
	cfg.SendTimeout, cfg.Lease = 100*time.Millisecond, 200*time.Millisecond
	// A process died while these were in flight: one on an early attempt,
	// one on its last allowed attempt.
	if _, err := db.ExecContext(ctx, `
		INSERT INTO deliveries (flat_id, email, house_id, house_address, flat_number, rooms, price,
		                        event_id, approved_at, state, attempts, next_attempt_at)
		VALUES (1, 'crashed@example.com', 1, 'Gorkogo 7', 1, 2, 100, 'e1', now(), 'sending', 1, now() - interval '1 second'),
		       (1, 'last@example.com',    1, 'Gorkogo 7', 1, 2, 100, 'e1', now(), 'sending', ?, now() - interval '1 second')`,
		cfg.MaxAttempts); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	s := newSender(t, cfg, db, rec)
	start(t, s)
	waitFor(t, 10*time.Second, "both closed", settled(t, s))
	assertOnce(t, rec.counts(), []string{"crashed@example.com"})
	var state, lastErr string
	if err := db.NewRaw("SELECT state, last_error FROM deliveries WHERE email = 'last@example.com'").Scan(ctx, &state, &lastErr); err != nil {
		t.Fatal(err)
	}
	if state != sender.StateFailed || !strings.Contains(lastErr, "lease expired") {
		t.Errorf("last attempt lost: state %q, error %q; want failed, lease expired", state, lastErr)
	}
}

func TestTwoSendersShareOneFanOut(t *testing.T) {
	t.Parallel()
	// Two pools on one database stand for two processes.
	url := pgtest.URL(t)
	db, db2 := open(t, url), open(t, url)
	subs := emails("shared", 60)
	h := house(t, db, "Mira 8", subs)
	f, num := flat(t, db, h)

	shared := newRecorder()
	latency := func() time.Duration { return time.Duration(5+rand.IntN(10)) * time.Millisecond }
	shared.latency = latency
	var byA, byB atomic.Int64
	a := &countingMailer{inner: shared, n: &byA}
	b := &countingMailer{inner: shared, n: &byB}
	cfg := fastConfig()
	cfg.Concurrency, cfg.ClaimBatch = 4, 2
	start(t, newSender(t, cfg, db, a))
	sb := newSender(t, cfg, db2, b)
	start(t, sb)

	publish(t, db, h, f, num, "Mira 8", "on moderation", "approved", false)
	waitFor(t, 20*time.Second, "all sent", func() bool { return shared.total() >= len(subs) })
	waitFor(t, 10*time.Second, "senders to settle", settled(t, sb))
	assertOnce(t, shared.counts(), subs)
	assertOnce(t, sentRows(t, db, f), subs)
	if byA.Load() == 0 || byB.Load() == 0 {
		t.Errorf("work not shared: A sent %d, B sent %d", byA.Load(), byB.Load())
	}
	t.Logf("A sent %d, B sent %d", byA.Load(), byB.Load())
}

// countingMailer counts the successful sends of one sender instance.
type countingMailer struct {
	inner sender.Mailer
	n     *atomic.Int64
}

func (c *countingMailer) Send(ctx context.Context, m sender.Message) error {
	if err := c.inner.Send(ctx, m); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

func TestFailedDeliveriesAreKeptAndRedriven(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	subs := emails("bounce", 3)
	h := house(t, db, "Lesnaya 9", subs)
	f, num := flat(t, db, h)

	var down atomic.Bool
	down.Store(true)
	rec := newRecorder()
	rec.fail = func(sender.Message) error {
		if down.Load() {
			return errors.New("550 mailbox unavailable")
		}
		return nil
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	s := newSender(t, cfg, db, rec)
	start(t, s)
	publish(t, db, h, f, num, "Lesnaya 9", "on moderation", "approved", false)

	waitFor(t, 10*time.Second, "all failed", func() bool {
		st, err := s.Stats(ctx)
		return err == nil && st.Failed == 3
	})
	var attempts int
	var lastErr string
	if err := db.NewRaw("SELECT max(attempts), min(last_error) FROM deliveries").Scan(ctx, &attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if attempts != 3 || !strings.Contains(lastErr, "550") {
		t.Errorf("failed rows: attempts %d, last error %q", attempts, lastErr)
	}
	if rec.total() != 0 {
		t.Fatalf("%d sends recorded while the mailer was down", rec.total())
	}

	down.Store(false)
	n, err := s.Redrive(ctx)
	if err != nil || n != 3 {
		t.Fatalf("redrive = %d, %v; want 3", n, err)
	}
	waitFor(t, 10*time.Second, "all sent", func() bool { return rec.total() >= 3 })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	assertOnce(t, rec.counts(), subs)
}

func TestCleanupDeletesOnlyHandledOldEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	h := house(t, db, "Sennaya 10", emails("clean", 1))
	f, num := flat(t, db, h)
	cfg := fastConfig()
	cfg.CleanupAge = time.Millisecond
	rec := newRecorder()
	s := newSender(t, cfg, db, rec)

	publish(t, db, h, f, num, "Sennaya 10", "", "created", false)
	time.Sleep(5 * time.Millisecond)
	if n, err := s.CleanupOutbox(ctx); err != nil || n != 0 {
		t.Fatalf("cleanup before any consumer = %d, %v; want 0", n, err)
	}
	stop := start(t, s)
	publish(t, db, h, f, num, "Sennaya 10", "on moderation", "approved", false)
	waitFor(t, 10*time.Second, "the send", func() bool { return rec.total() == 1 })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	stop()
	time.Sleep(5 * time.Millisecond)
	n, err := s.CleanupOutbox(ctx)
	if err != nil || n != 2 {
		t.Fatalf("cleanup after consuming = %d, %v; want 2", n, err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]sender.Config{
		"lease below send timeout": {SendTimeout: time.Minute, Lease: time.Second},
		"negative concurrency":     {Concurrency: -1},
		"negative poll":            {PollInterval: -time.Second},
		"backoff max below base":   {BackoffBase: time.Minute, BackoffMax: time.Second},
	} {
		if _, err := sender.New(cfg, new(bun.DB), newRecorder(), nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	s, err := sender.New(sender.Config{}, new(bun.DB), newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Config(), sender.DefaultConfig(); got.Concurrency != want.Concurrency || got.Lease != want.SendTimeout+30*time.Second {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func open(t *testing.T, url string) *bun.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), url, pg.PoolConfig{MaxOpenConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
