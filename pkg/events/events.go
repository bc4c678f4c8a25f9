// Package events is the outbox of the home services: the topics and payloads
// of domain events, publishing them with watermill-sql inside the caller's
// bun transaction, and the pieces a consumer needs (subscriber, wake-up on
// NOTIFY). The watermill tables are created by migrations/0004, never at run
// time: the publisher writes inside other services' transactions.
package events

import (
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
)

// TopicFlatStatusChanged carries eventsv1.FlatStatusChanged: a flat was
// created or its moderation status changed.
const TopicFlatStatusChanged = "flat.status-changed.v1"

// OutboxChannel is the PostgreSQL NOTIFY channel that Publish signals in the
// publishing transaction, so consumers wake on its commit instead of waiting
// for their next poll. The payload is the topic.
const OutboxChannel = "homes_outbox"

// Metadata keys set on every published message.
const (
	// MetadataEventType names the protobuf message in the payload.
	MetadataEventType = "event_type"
)

// MessagesTable is the (unquoted) table that holds the messages of topic; it
// matches watermill-sql's default naming. Quote it as one identifier
// (pgx.Identifier): bun.Ident would split it at the topic's dots.
func MessagesTable(topic string) string { return "watermill_" + topic }

// OffsetsTable is the (unquoted) table that holds the consumer groups'
// offsets of topic.
func OffsetsTable(topic string) string { return "watermill_offsets_" + topic }

// Schema is the watermill-sql schema adapter of the outbox: the default
// PostgreSQL one with a BYTEA payload (protobuf). A batch is read, handled
// and acked in one transaction; handlers that write through that
// transaction (wsql.TxFromContext) commit with the ack, and a crash redoes
// the batch, so they must be idempotent.
func Schema() wsql.DefaultPostgreSQLSchema {
	return wsql.DefaultPostgreSQLSchema{
		GeneratePayloadType: func(string) string { return "BYTEA" },
		SubscribeBatchSize:  50,
	}
}

// OffsetsAdapter is the watermill-sql offsets adapter of the outbox: one
// offset per consumer group, so each event is handled once per group.
func OffsetsAdapter() wsql.DefaultPostgreSQLOffsetsAdapter {
	return wsql.DefaultPostgreSQLOffsetsAdapter{}
}

// NewFlatStatusChangedMessage wraps ev in a watermill message with a fresh
// UUID and the event type in the metadata.
func NewFlatStatusChangedMessage(ev *eventsv1.FlatStatusChanged) (*message.Message, error) {
	payload, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal flat status changed: %w", err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(MetadataEventType, string(ev.ProtoReflect().Descriptor().FullName()))
	return msg, nil
}

// DecodeFlatStatusChanged reads the payload of a message published on
// TopicFlatStatusChanged.
func DecodeFlatStatusChanged(msg *message.Message) (*eventsv1.FlatStatusChanged, error) {
	ev := &eventsv1.FlatStatusChanged{}
	if err := proto.Unmarshal(msg.Payload, ev); err != nil {
		return nil, fmt.Errorf("unmarshal flat status changed %s: %w", msg.UUID, err)
	}
	return ev, nil
}

// WatermillLogger adapts log for watermill, demoting watermill's chatty Info
// lines (handler started, subscriber closing...) to Debug.
func WatermillLogger(log *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}
