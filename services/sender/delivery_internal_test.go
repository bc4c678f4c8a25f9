package sender

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// takenOver makes a delivery whose first claim (attempt 1) ran out of lease
// and was claimed again (attempt 2), both sends still unrecorded: what two
// senders see when the first one's send outlives its lease.
func takenOver(t *testing.T, s *Sender) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := s.db.NewRaw(`
		INSERT INTO deliveries (flat_id, email, house_id, house_address, flat_number, rooms, price, event_id, approved_at)
		VALUES (1, 'a@example.com', 1, 'x', 1, 1, 1, 'ev', now()) RETURNING id`).Scan(ctx, &id); err != nil {
		t.Fatalf("insert delivery: %v", err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		jobs, err := s.claim(ctx, 1)
		if err != nil || len(jobs) != 1 || jobs[0].Attempts != attempt {
			t.Fatalf("claim %d: %+v, %v", attempt, jobs, err)
		}
		if attempt == 1 { // the lease runs out
			if _, err := s.db.ExecContext(ctx, "UPDATE deliveries SET next_attempt_at = now() WHERE id = ?", id); err != nil {
				t.Fatal(err)
			}
		}
	}
	return id
}

type deliveryRow struct {
	State    string     `bun:"state"`
	Attempts int        `bun:"attempts"`
	SentAt   *time.Time `bun:"sent_at"`
}

func readDelivery(t *testing.T, db *bun.DB, id int64) deliveryRow {
	t.Helper()
	var r deliveryRow
	if err := db.NewRaw("SELECT state, attempts, sent_at FROM deliveries WHERE id = ?", id).Scan(context.Background(), &r); err != nil {
		t.Fatalf("read delivery: %v", err)
	}
	return r
}

// TestLateSentOutcomeWins: a send that succeeded is recorded whenever its
// outcome arrives, even after its lease was taken over; the taken-over
// attempt's failures cannot undo it, and a second success is not recorded
// again. Failures and hand-backs stay fenced by the attempt.
func TestLateSentOutcomeWins(t *testing.T) {
	t.Parallel()
	bounce := errors.New("451 try again")
	sent := func(attempt int) outcome { return outcome{attempt: attempt} }
	failed := func(attempt int) outcome { return outcome{attempt: attempt, err: bounce} }
	released := func(attempt int) outcome { return outcome{attempt: attempt, err: context.Canceled, release: true} }

	for name, tc := range map[string]struct {
		batches      [][]outcome // recorded one after the other
		wantState    string
		wantAttempts int
	}{
		"late success after the takeover failed": {
			batches:   [][]outcome{{failed(2)}, {sent(1)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"takeover fails after the late success": {
			batches:   [][]outcome{{sent(1)}, {failed(2)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"takeover hands back after the late success": {
			batches:   [][]outcome{{sent(1)}, {released(2)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"both succeed": {
			batches:   [][]outcome{{sent(1)}, {sent(2)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"success and failure in one batch": {
			batches:   [][]outcome{{failed(2), sent(1)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"failure and success in one batch": {
			batches:   [][]outcome{{sent(1), failed(2)}},
			wantState: StateSent, wantAttempts: 2,
		},
		"late failure is fenced": {
			batches:   [][]outcome{{failed(1)}},
			wantState: StateSending, wantAttempts: 2,
		},
		"late hand-back is fenced": {
			batches:   [][]outcome{{released(1)}},
			wantState: StateSending, wantAttempts: 2,
		},
		"current failure is recorded": {
			batches:   [][]outcome{{failed(1)}, {failed(2)}},
			wantState: StateFailed, wantAttempts: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			cfg := DefaultConfig()
			cfg.MaxAttempts = 2 // attempt 2 failing fails the delivery
			s, err := New(cfg, db, NewMockMailer(MockConfig{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			id := takenOver(t, s)
			var firstSent *time.Time
			for _, batch := range tc.batches {
				for i := range batch {
					batch[i].id = id
				}
				s.recordBatch(batch)
				if r := readDelivery(t, db, id); firstSent == nil && r.SentAt != nil {
					firstSent = r.SentAt
				}
			}
			got := readDelivery(t, db, id)
			if got.State != tc.wantState || got.Attempts != tc.wantAttempts {
				t.Errorf("delivery is %s after %d attempts, want %s after %d", got.State, got.Attempts, tc.wantState, tc.wantAttempts)
			}
			if firstSent != nil && !got.SentAt.Equal(*firstSent) {
				t.Errorf("sent_at moved from %s to %s: a second success was recorded", firstSent, got.SentAt)
			}
		})
	}
}

// TestBackoff: the wait doubles from BackoffBase per failed attempt up to
// BackoffMax, with jitter of ±25 % that never passes BackoffMax.
func TestBackoff(t *testing.T) {
	t.Parallel()
	s := &Sender{cfg: Config{BackoffBase: time.Second, BackoffMax: 5 * time.Minute}}
	for _, tc := range []struct {
		attempt int
		nominal time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{5, 16 * time.Second},
		{9, 256 * time.Second},
		{10, 5 * time.Minute}, // 512 s, capped
		{64, 5 * time.Minute}, // no overflow
		{1 << 20, 5 * time.Minute},
	} {
		lo, hi := tc.nominal-tc.nominal/4, min(tc.nominal+tc.nominal/4, s.cfg.BackoffMax)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := s.backoff(tc.attempt)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", tc.attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: %d distinct waits in 200, want jitter", tc.attempt, len(seen))
		}
	}
	// A base too small to jitter is kept as it is.
	tiny := &Sender{cfg: Config{BackoffBase: 3, BackoffMax: 100}}
	if d := tiny.backoff(1); d != 3 {
		t.Errorf("tiny backoff = %d, want 3", d)
	}
}
