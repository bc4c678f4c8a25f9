package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	"github.com/homeservices/homes/pkg/events"
)

// statusApproved is the status whose arrival notifies subscribers.
const statusApproved = "approved"

// fanOutQuery records one delivery per subscriber of the house. It runs in
// the subscriber's transaction, which also acks the event, and the unique
// (flat_id, email) pair makes a redelivered event a no-op. Each row keeps the
// trace context of the fan-out, so that its send joins the approval's trace.
const fanOutQuery = `
INSERT INTO deliveries (flat_id, email, house_id, house_address, flat_number, rooms, price, event_id, approved_at, traceparent)
SELECT $1, s.email, s.house_id, coalesce(nullif($3::text, ''), h.address, ''), $4, $5, $6, $7, $8::timestamptz, nullif($9::text, '')
  FROM subscriptions AS s
  LEFT JOIN houses AS h ON h.id = s.house_id
 WHERE s.house_id = $2
ON CONFLICT (flat_id, email) DO NOTHING`

// handle is the watermill handler of TopicFlatStatusChanged.
func (s *Sender) handle(msg *message.Message) (err error) {
	// The fan-out continues the trace of the change, carried by the event.
	ctx, span := s.tracer.Start(events.ExtractTrace(msg.Context(), msg.Metadata), "sender.fan_out",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "watermill"),
			attribute.String("messaging.destination.name", events.TopicFlatStatusChanged),
			attribute.String("messaging.message.id", msg.UUID),
		))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "fan out failed")
		}
		span.End()
	}()
	ev, err := events.DecodeFlatStatusChanged(msg)
	if err != nil {
		// It will never decode: retrying would block the topic for good.
		s.log.ErrorContext(ctx, "drop undecodable event", "uuid", msg.UUID, "error", err)
		return nil
	}
	span.SetAttributes(attribute.Int("homes.flat_id", int(ev.GetFlatId())), attribute.String("homes.new_status", ev.GetNewStatus()))
	if ev.GetNewStatus() != statusApproved {
		return nil
	}
	tx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("handle event: no subscriber transaction in context")
	}
	// A nack makes watermill redeliver in the same transaction: the
	// savepoint undoes a failed attempt so that the retry starts clean.
	if _, err := tx.ExecContext(ctx, "SAVEPOINT sender_fan_out"); err != nil {
		return fmt.Errorf("set savepoint: %w", err)
	}
	n, err := s.fanOut(ctx, tx, msg.UUID, ev)
	if err != nil {
		if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sender_fan_out"); rbErr != nil {
			err = errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rbErr))
		}
		s.log.WarnContext(ctx, "fan out approval", "uuid", msg.UUID, "flat_id", ev.GetFlatId(), "error", err)
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT sender_fan_out"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	s.log.InfoContext(ctx, "approval fanned out",
		"uuid", msg.UUID, "flat_id", ev.GetFlatId(), "house_id", ev.GetHouseId(), "deliveries", n)
	return nil
}

func (s *Sender) fanOut(ctx context.Context, tx wsql.Tx, uuid string, ev *eventsv1.FlatStatusChanged) (int64, error) {
	approvedAt := time.Now()
	if ev.GetOccurredAt() != nil {
		approvedAt = ev.GetOccurredAt().AsTime()
	}
	res, err := tx.ExecContext(ctx, fanOutQuery,
		ev.GetFlatId(), ev.GetHouseId(), ev.GetHouseAddress(),
		ev.GetNumber(), ev.GetRooms(), ev.GetPrice(), uuid, approvedAt, events.Traceparent(ctx))
	if err != nil {
		return 0, fmt.Errorf("insert deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("count deliveries: %w", err)
	}
	if n > 0 {
		// Delivered with the commit, to every sender process.
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, '')", DeliveryChannel); err != nil {
			return 0, fmt.Errorf("notify deliveries: %w", err)
		}
	}
	return n, nil
}
