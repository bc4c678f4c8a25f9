package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
)

// Outbox publishes events inside the caller's transaction: the event row
// and the change it describes commit or roll back together.
type Outbox struct {
	log    *slog.Logger
	wlog   watermill.LoggerAdapter
	schema wsql.DefaultPostgreSQLSchema
	now    func() time.Time
}

// NewOutbox returns an outbox that logs through log (nil means the default).
func NewOutbox(log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.Default()
	}
	return &Outbox{log: log, wlog: WatermillLogger(log), schema: Schema(), now: time.Now}
}

// Publish writes ev to TopicFlatStatusChanged with the watermill-sql
// publisher bound to tx, and NOTIFYs OutboxChannel in the same transaction so
// that consumers wake when it commits. Its signature is the home service's
// flat change hook: pass outbox.Publish to home.WithFlatChangeHook. An error
// must roll tx back. An unset occurred_at is filled in with the current time.
// The W3C trace context of ctx's span, if any, goes into the message's
// metadata (MetadataTraceparent, see ExtractTrace).
func (o *Outbox) Publish(ctx context.Context, tx bun.Tx, ev *eventsv1.FlatStatusChanged) error {
	if ev == nil {
		return errors.New("publish flat status changed: nil event")
	}
	if tx.Tx == nil {
		return errors.New("publish flat status changed: no transaction")
	}
	if ev.GetOccurredAt() == nil {
		ev.OccurredAt = timestamppb.New(o.now().UTC())
	}
	msg, err := NewFlatStatusChangedMessage(ev)
	if err != nil {
		return err
	}
	// The trace of the change (the HTTP request's span) goes with the event,
	// so that consumers can continue it.
	InjectTrace(ctx, msg.Metadata)
	msg.SetContext(ctx) // the publisher runs its INSERT with the message's context
	pub, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx.Tx), wsql.PublisherConfig{SchemaAdapter: o.schema}, o.wlog)
	if err != nil {
		return fmt.Errorf("create outbox publisher: %w", err)
	}
	if err := pub.Publish(TopicFlatStatusChanged, msg); err != nil {
		return fmt.Errorf("insert outbox event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, ?)", OutboxChannel, TopicFlatStatusChanged); err != nil {
		return fmt.Errorf("notify outbox: %w", err)
	}
	o.log.DebugContext(ctx, "outbox event published",
		"topic", TopicFlatStatusChanged, "uuid", msg.UUID,
		"flat_id", ev.GetFlatId(), "old_status", ev.GetOldStatus(), "new_status", ev.GetNewStatus())
	return nil
}
