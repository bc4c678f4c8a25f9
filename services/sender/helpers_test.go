package sender_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	"github.com/homeservices/homes/pkg/events"
	"github.com/homeservices/homes/services/sender"
)

// testLog is quiet unless SENDER_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("SENDER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig keeps every wait in the milliseconds.
func fastConfig() sender.Config {
	return sender.Config{
		PollInterval:    50 * time.Millisecond,
		Concurrency:     8,
		ClaimBatch:      4,
		MaxAttempts:     5,
		BackoffBase:     10 * time.Millisecond,
		BackoffMax:      50 * time.Millisecond,
		SendTimeout:     2 * time.Second,
		Lease:           3 * time.Second,
		ShutdownGrace:   time.Second,
		StatsInterval:   200 * time.Millisecond,
		CleanupInterval: time.Hour,
	}
}

// recorder is a Mailer that counts successful sends per recipient. Before
// each send it waits latency() and asks fail() whether to fail.
type recorder struct {
	mu      sync.Mutex
	sent    map[string]int
	msgs    []sender.Message
	tries   int
	latency func() time.Duration
	fail    func(m sender.Message) error
}

func newRecorder() *recorder { return &recorder{sent: map[string]int{}} }

func (r *recorder) Send(ctx context.Context, m sender.Message) error {
	r.mu.Lock()
	r.tries++
	r.mu.Unlock()
	if r.latency != nil {
		t := time.NewTimer(r.latency())
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[m.To]++
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(map[string]int, len(r.sent))
	for k, v := range r.sent {
		c[k] = v
	}
	return c
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// house inserts a house with the given subscribers and returns its id.
func house(t *testing.T, db *bun.DB, address string, emails []string) int32 {
	t.Helper()
	ctx := context.Background()
	var id int32
	if err := db.NewRaw("INSERT INTO houses (address, year) VALUES (?, 2001) RETURNING id", address).Scan(ctx, &id); err != nil {
		t.Fatalf("insert house: %v", err)
	}
	for _, e := range emails {
		if _, err := db.ExecContext(ctx, "INSERT INTO subscriptions (house_id, email) VALUES (?, ?)", id, e); err != nil {
			t.Fatalf("insert subscription: %v", err)
		}
	}
	return id
}

// flat inserts a flat of house and returns its id and number.
func flat(t *testing.T, db *bun.DB, houseID int32) (id, number int32) {
	t.Helper()
	ctx := context.Background()
	err := db.NewRaw(`
		WITH n AS (UPDATE houses SET flats_count = flats_count + 1 WHERE id = ? RETURNING flats_count)
		INSERT INTO flats (house_id, number, price, rooms) SELECT ?, flats_count, 5000000, 3 FROM n
		RETURNING id, number`, houseID, houseID).Scan(ctx, &id, &number)
	if err != nil {
		t.Fatalf("insert flat: %v", err)
	}
	return id, number
}

// emails returns n distinct addresses with a prefix.
func emails(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d@example.com", prefix, i)
	}
	return out
}

var errRollback = errors.New("test rollback")

// publish publishes a status change of flat in its own transaction, which
// commits unless rollback is set.
func publish(t *testing.T, db *bun.DB, houseID, flatID, number int32, address, oldStatus, newStatus string, rollback bool) {
	t.Helper()
	ctx := context.Background()
	out := events.NewOutbox(testLog())
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := out.Publish(ctx, tx, &eventsv1.FlatStatusChanged{
			FlatId: flatID, HouseId: houseID, Number: number, Price: 5000000, Rooms: 3,
			OldStatus: oldStatus, NewStatus: newStatus, HouseAddress: address,
			OccurredAt: timestamppb.Now(), ActorId: "moderator-1",
		}); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback && !errors.Is(err, errRollback) {
		t.Fatalf("publish (rolled back): %v", err)
	}
	if !rollback && err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// start runs s until the test ends (or stop is called) and returns stop,
// which cancels Run and waits for it.
func start(t *testing.T, s *sender.Sender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run sender: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("sender did not stop within 15 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newSender(t *testing.T, cfg sender.Config, db *bun.DB, m sender.Mailer) *sender.Sender {
	t.Helper()
	s, err := sender.New(cfg, db, m, testLog())
	if err != nil {
		t.Fatalf("new sender: %v", err)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled reports whether every delivery is closed (sent or failed) and
// every event handled.
func settled(t *testing.T, s *sender.Sender) func() bool {
	return func() bool {
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Logf("stats: %v", err)
			return false
		}
		return st.Pending == 0 && st.Sending == 0 && st.OutboxBacklog == 0
	}
}

// sentRows counts deliveries in state sent per email.
func sentRows(t *testing.T, db *bun.DB, flatID int32) map[string]int {
	t.Helper()
	var rows []struct {
		Email string `bun:"email"`
		N     int    `bun:"n"`
	}
	if err := db.NewRaw("SELECT email::text, count(*) AS n FROM deliveries WHERE flat_id = ? AND state = 'sent' GROUP BY email", flatID).
		Scan(context.Background(), &rows); err != nil {
		t.Fatalf("read deliveries: %v", err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Email] = r.N
	}
	return out
}

// assertOnce checks that every address in want got exactly one send and
// nobody else got any.
func assertOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	for _, e := range want {
		if got[e] != 1 {
			t.Errorf("%s: %d sends, want 1", e, got[e])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d recipients got mail, want %d: %v", len(got), len(want), got)
	}
}
