package events_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	"github.com/homeservices/homes/pkg/events"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// spanContext is a sampled remote span of a fixed trace.
func spanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// TestPublishCarriesTheTraceContext: the event published inside a traced
// request carries its W3C traceparent in the metadata; one published
// outside any span carries none.
func TestPublishCarriesTheTraceContext(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	out := events.NewOutbox(quiet)
	sc := spanContext(t)
	traced := trace.ContextWithSpanContext(context.Background(), sc)
	for _, ctx := range []context.Context{traced, context.Background()} {
		if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return out.Publish(ctx, tx, &eventsv1.FlatStatusChanged{FlatId: 1, NewStatus: "approved"})
		}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	rows := outboxRows(t, db)
	if len(rows) != 2 {
		t.Fatalf("%d outbox rows, want 2", len(rows))
	}
	var md message.Metadata
	if err := json.Unmarshal([]byte(rows[0].Metadata), &md); err != nil {
		t.Fatal(err)
	}
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; md.Get(events.MetadataTraceparent) != want {
		t.Fatalf("traced event metadata %v, want traceparent %s", md, want)
	}
	got := trace.SpanContextFromContext(events.ExtractTrace(context.Background(), md))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsRemote() || !got.IsSampled() {
		t.Errorf("extracted %v, want %v", got, sc)
	}
	if rows[1].Metadata != `{"event_type":"homes.events.v1.FlatStatusChanged"}` {
		t.Errorf("untraced event metadata = %s", rows[1].Metadata)
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	sc := spanContext(t)
	tp := events.Traceparent(trace.ContextWithSpanContext(context.Background(), sc))
	if got := trace.SpanContextFromContext(events.WithTraceparent(context.Background(), tp)); got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("round trip of %q gave %v", tp, got)
	}
	if tp := events.Traceparent(context.Background()); tp != "" {
		t.Errorf("no span, traceparent %q", tp)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if got := trace.SpanContextFromContext(events.WithTraceparent(context.Background(), bad)); got.IsValid() {
			t.Errorf("traceparent %q gave a valid span context %v", bad, got)
		}
	}
}
