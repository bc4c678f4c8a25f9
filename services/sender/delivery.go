package sender

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun/dialect/pgdialect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/homeservices/homes/pkg/events"
)

// Delivery states, as stored in deliveries.state.
const (
	StatePending = "pending"
	StateSending = "sending"
	StateSent    = "sent"
	StateFailed  = "failed"
)

// claimQuery takes up to n due deliveries in one short statement: pending
// ones whose time has come and sending ones whose lease ran out (their
// process died). SKIP LOCKED lets concurrent senders take disjoint rows.
// The claim counts as an attempt and leases the row; attempts is the fencing
// token of the later record.
const claimQuery = `
WITH due AS (
    SELECT id FROM deliveries
     WHERE state IN ('pending', 'sending') AND next_attempt_at <= now() AND attempts < ?
     ORDER BY next_attempt_at
     LIMIT ?
       FOR UPDATE SKIP LOCKED
)
UPDATE deliveries AS d
   SET state = 'sending',
       attempts = d.attempts + 1,
       next_attempt_at = now() + ? * interval '1 millisecond',
       first_attempt_at = coalesce(d.first_attempt_at, now()),
       updated_at = now()
  FROM due
 WHERE d.id = due.id
RETURNING d.id, d.attempts, d.email, d.house_id, d.house_address, d.flat_id, d.flat_number, d.rooms, d.price,
          coalesce(d.traceparent, '') AS traceparent`

// nextDueQuery tells how long until the earliest claimable delivery is
// due; NULL when there is none.
const nextDueQuery = `
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
  FROM deliveries WHERE state IN ('pending', 'sending') AND attempts < ?`

// recordQuery stores a batch of outcomes. A success is written whenever the
// row is not sent yet, even if its lease was taken over meanwhile: the email
// went out, and a later failure of the sender that took over must not make
// it go out again. A row already sent keeps its first success. Any other
// outcome is only written if the row is still the claim that was sent (same
// attempt, still sending): a sender whose lease ran out cannot overwrite the
// work of the one that took over.
const recordQuery = `
UPDATE deliveries AS d
   SET state = r.state,
       attempts = d.attempts - r.undo,
       next_attempt_at = now() + r.delay_ms * interval '1 millisecond',
       last_error = coalesce(nullif(r.error, ''), d.last_error),
       sent_at = CASE WHEN r.state = 'sent' THEN now() END,
       updated_at = now()
  FROM unnest(?::bigint[], ?::int[], ?::text[], ?::bigint[], ?::text[], ?::int[])
       AS r(id, attempt, state, delay_ms, error, undo)
 WHERE d.id = r.id
   AND CASE WHEN r.state = 'sent' THEN d.state <> 'sent'
            ELSE d.state = 'sending' AND d.attempts = r.attempt END`

// claimed is one row of claimQuery.
type claimed struct {
	ID           int64  `bun:"id"`
	Attempts     int    `bun:"attempts"`
	Email        string `bun:"email"`
	HouseID      int32  `bun:"house_id"`
	HouseAddress string `bun:"house_address"`
	FlatID       int32  `bun:"flat_id"`
	FlatNumber   int32  `bun:"flat_number"`
	Rooms        int32  `bun:"rooms"`
	Price        int32  `bun:"price"`
	Traceparent  string `bun:"traceparent"` // of the fan-out; "" when untraced
}

func (c claimed) message() Message {
	return Message{
		DeliveryID: c.ID, To: c.Email,
		HouseID: c.HouseID, HouseAddress: c.HouseAddress,
		FlatID: c.FlatID, FlatNumber: c.FlatNumber, Rooms: c.Rooms, Price: c.Price,
	}
}

// outcome is the result of one send attempt.
type outcome struct {
	id      int64
	attempt int
	err     error
	release bool // cancelled by shutdown: hand back without using the attempt
}

// deliver claims and sends due deliveries until ctx ends, then drains.
func (s *Sender) deliver(ctx context.Context, wake <-chan struct{}) {
	// Sends outlive ctx by the shutdown grace, so that a stop does not
	// waste the work in flight.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	outcomes := make(chan outcome, s.cfg.Concurrency)
	recorded := make(chan struct{})
	go func() {
		s.record(outcomes)
		close(recorded)
	}()

	var inflight sync.WaitGroup
	var busy atomic.Int64
	freed := make(chan struct{}, 1)
	for ctx.Err() == nil {
		want := min(s.cfg.Concurrency-int(busy.Load()), s.cfg.ClaimBatch)
		wait := s.cfg.PollInterval
		var slotFreed <-chan struct{}
		if want <= 0 {
			slotFreed = freed // saturated: look again when a send ends
		} else {
			jobs, err := s.claim(ctx, want)
			switch {
			case err != nil && ctx.Err() != nil:
				continue
			case err != nil:
				s.log.Error("claim deliveries", "error", err)
			case len(jobs) == want:
				// More may be due.
				s.start(sendCtx, jobs, &inflight, &busy, freed, outcomes)
				continue
			default:
				s.start(sendCtx, jobs, &inflight, &busy, freed, outcomes)
				if next, ok, err := s.nextDue(ctx); err == nil && ok && next < wait {
					// Due rows another sender has locked right now are
					// claimed by it in a moment: look again soon, not at once.
					wait = max(next, 10*time.Millisecond)
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-slotFreed:
		case <-t.C:
		}
		t.Stop()
	}

	done := make(chan struct{})
	go func() {
		inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.ShutdownGrace)
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("cancelling in-flight sends", "count", busy.Load())
		cancelSends()
		<-done
	}
	t.Stop()
	close(outcomes)
	<-recorded
}

func (s *Sender) start(ctx context.Context, jobs []claimed, inflight *sync.WaitGroup, busy *atomic.Int64, freed chan struct{}, out chan<- outcome) {
	for _, j := range jobs {
		busy.Add(1)
		inflight.Go(func() {
			out <- s.send(ctx, j)
			busy.Add(-1)
			signal(freed)
		})
	}
}

func (s *Sender) send(ctx context.Context, j claimed) outcome {
	// The send joins the trace of the approval that caused it.
	sctx, span := s.tracer.Start(events.WithTraceparent(ctx, j.Traceparent), "sender.send",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.Int64("homes.delivery_id", j.ID),
			attribute.Int("homes.attempt", j.Attempts),
			attribute.Int("homes.flat_id", int(j.FlatID)),
			attribute.Int("homes.house_id", int(j.HouseID)),
		))
	sctx, cancel := context.WithTimeout(sctx, s.cfg.SendTimeout)
	err := s.mailer.Send(sctx, j.message())
	cancel()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "send failed")
	}
	span.End()
	o := outcome{id: j.ID, attempt: j.Attempts, err: err}
	if err != nil && ctx.Err() != nil {
		o.release = true
	}
	return o
}

// claim takes up to n due deliveries.
func (s *Sender) claim(ctx context.Context, n int) ([]claimed, error) {
	var rows []claimed
	err := s.db.NewRaw(claimQuery, s.cfg.MaxAttempts, n, s.cfg.Lease.Milliseconds()).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return rows, nil
}

// nextDue is the time until the earliest claimable delivery is due; ok is
// false when there is none.
func (s *Sender) nextDue(ctx context.Context) (d time.Duration, ok bool, err error) {
	var secs sql.NullFloat64
	if err := s.db.NewRaw(nextDueQuery, s.cfg.MaxAttempts).Scan(ctx, &secs); err != nil {
		return 0, false, fmt.Errorf("read next due delivery: %w", err)
	}
	if !secs.Valid {
		return 0, false, nil
	}
	return time.Duration(secs.Float64 * float64(time.Second)), true, nil
}

// record writes outcomes in batches until the channel is closed. It uses its
// own contexts: outcomes of sends that finished during shutdown must still
// be written, or those emails would go out twice.
func (s *Sender) record(in <-chan outcome) {
	const maxBatch = 256
	batch := make([]outcome, 0, maxBatch)
	for o := range in {
		batch = append(batch[:0], o)
	drain:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.recordBatch(batch)
	}
}

// recordBatch writes one batch, retrying for a while; if the database stays
// away the rows keep their lease and are sent again after it.
func (s *Sender) recordBatch(batch []outcome) {
	batch = latest(batch)
	n := len(batch)
	ids := make([]int64, n)
	attempts := make([]int, n)
	states := make([]string, n)
	delays := make([]int64, n)
	errs := make([]string, n)
	undo := make([]int, n)
	var sent, retried, failed, released int
	for i, o := range batch {
		ids[i], attempts[i] = o.id, o.attempt
		switch {
		case o.err == nil:
			states[i] = StateSent
			sent++
		case o.release:
			states[i], undo[i] = StatePending, 1
			released++
		case o.attempt >= s.cfg.MaxAttempts:
			states[i], errs[i] = StateFailed, errText(o.err)
			failed++
		default:
			states[i], errs[i] = StatePending, errText(o.err)
			delays[i] = s.backoff(o.attempt).Milliseconds()
			retried++
		}
	}
	var lastErr error
	for try := range 8 {
		if try > 0 {
			time.Sleep(time.Duration(1<<try) * 50 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := s.db.ExecContext(ctx, recordQuery,
			pgdialect.Array(ids), pgdialect.Array(attempts), pgdialect.Array(states),
			pgdialect.Array(delays), pgdialect.Array(errs), pgdialect.Array(undo))
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if m, err := res.RowsAffected(); err == nil && int(m) < n {
			s.log.Warn("some delivery outcomes came after their lease was taken over",
				"outcomes", n, "written", m)
		}
		s.log.Debug("delivery outcomes recorded",
			"sent", sent, "retry", retried, "failed", failed, "released", released)
		return
	}
	s.log.Error("record delivery outcomes, giving up (rows will be retried after their lease)",
		"outcomes", n, "error", lastErr)
}

// latest keeps one outcome per delivery: a success if there is one, else the
// latest attempt's. A delivery appears twice when its lease ran out during a
// send and this process claimed it again; an UPDATE joined to both rows would
// apply either.
func latest(batch []outcome) []outcome {
	at := make(map[int64]int, len(batch))
	out := make([]outcome, 0, len(batch))
	for _, o := range batch {
		i, seen := at[o.id]
		switch {
		case !seen:
			at[o.id] = len(out)
			out = append(out, o)
		case out[i].err == nil:
		case o.err == nil || o.attempt > out[i].attempt:
			out[i] = o
		}
	}
	return out
}

// backoff is the wait after the attempt-th failed attempt: BackoffBase
// doubled per attempt, capped at BackoffMax, with up to 25 % jitter so that
// a burst of failures does not retry in lockstep.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.BackoffBase
	for i := 1; i < attempt && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	if q := int64(d / 4); q > 0 {
		d = d - time.Duration(q) + time.Duration(rand.Int64N(2*q))
	}
	return min(d, s.cfg.BackoffMax)
}

// errText keeps stored errors readable and bounded.
func errText(err error) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "send timed out: " + msg
	}
	if len(msg) > 1000 {
		msg = strings.ToValidUTF8(msg[:1000], "")
	}
	if msg == "" {
		msg = "unknown error"
	}
	return msg
}
