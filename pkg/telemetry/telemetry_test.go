package telemetry_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/homeservices/homes/pkg/telemetry"
)

// TestQueryTracerOnlyWhenTracing: SQL spans cost something per statement,
// so the pgx tracer exists only when spans leave the process.
func TestQueryTracerOnlyWhenTracing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	off, err := telemetry.New(ctx, telemetry.Config{ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if off.Tracing() || off.QueryTracer() != nil {
		t.Error("no exporter, yet tracing is on")
	}
	on, err := telemetry.New(ctx, telemetry.Config{ServiceName: "test", SpanExporter: tracetest.NewInMemoryExporter()})
	if err != nil {
		t.Fatal(err)
	}
	if !on.Tracing() || on.QueryTracer() == nil {
		t.Error("an exporter, yet no query tracer")
	}
	for _, tel := range []*telemetry.Telemetry{off, on} {
		if err := tel.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}
}
