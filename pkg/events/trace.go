package events

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys of the W3C trace context, set by Publish when the
// publishing context carries a span.
const (
	// MetadataTraceparent is the W3C traceparent of the publishing span.
	MetadataTraceparent = "traceparent"
	// MetadataTracestate is the W3C tracestate, when there is one.
	MetadataTracestate = "tracestate"
)

// traceContext is the W3C trace-context propagator; it needs no global
// set-up and reads and writes only the two keys above.
var traceContext propagation.TraceContext

// InjectTrace writes the trace context of ctx's span into md (traceparent,
// tracestate); it writes nothing when ctx has no valid span.
func InjectTrace(ctx context.Context, md message.Metadata) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	traceContext.Inject(ctx, propagation.MapCarrier(md))
}

// ExtractTrace returns ctx with the remote span context that md carries (as
// InjectTrace wrote it), so that spans started from it join the publisher's
// trace; ctx unchanged when md carries none or an invalid one.
func ExtractTrace(ctx context.Context, md message.Metadata) context.Context {
	if md.Get(MetadataTraceparent) == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier(md))
}

// Traceparent is the W3C traceparent of ctx's span, "" when it has none:
// what a consumer stores to continue the trace later.
func Traceparent(ctx context.Context) string {
	md := message.Metadata{}
	InjectTrace(ctx, md)
	return md.Get(MetadataTraceparent)
}

// WithTraceparent returns ctx with the remote span context of a stored
// traceparent (see Traceparent); ctx unchanged when tp is empty or invalid.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	return ExtractTrace(ctx, message.Metadata{MetadataTraceparent: tp})
}
