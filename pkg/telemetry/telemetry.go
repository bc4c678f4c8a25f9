// Package telemetry sets up what operators read about a running process:
// Prometheus metrics (per-procedure requests, errors by code and latency,
// Go runtime, process, database pool, and figures services register) and
// OpenTelemetry traces (otelconnect spans, SQL spans through pgx, exported
// over OTLP when configured). One Telemetry per process composition: tests run many side
// by side, so nothing here touches a global registry.
package telemetry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/homeservices/homes/pkg/server"
)

// Namespace prefixes every metric of ours.
const Namespace = "homes"

// Config says how to set telemetry up.
type Config struct {
	// ServiceName names the process in traces (service.name), e.g.
	// "homes-auth"; OTEL_SERVICE_NAME, when set, wins.
	ServiceName string
	// OTLPEndpoint switches OTLP/HTTP trace export on. The exporter reads
	// it and the other standard OTEL_EXPORTER_OTLP_* variables itself.
	OTLPEndpoint string
	// SpanExporter, when set, receives the spans instead (tests use an
	// in-memory one).
	SpanExporter sdktrace.SpanExporter
}

// Telemetry holds one process's metrics registry and tracer provider.
type Telemetry struct {
	registry   *prometheus.Registry
	tracer     *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	rpc        *rpcMetrics
	exporting  bool // spans leave the process (OTLP or a configured exporter)
}

// New builds the registry (with Go runtime and process collectors) and the
// tracer provider. Spans are always made, so that logs carry a trace id and
// incoming trace context is honoured; they leave the process only when an
// exporter is configured.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	rpc := newRPCMetrics()
	if err := reg.Register(rpc); err != nil {
		return nil, fmt.Errorf("register rpc metrics: %w", err)
	}

	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	)
	if err != nil {
		return nil, fmt.Errorf("describe telemetry resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	exporting := true
	switch {
	case cfg.SpanExporter != nil:
		opts = append(opts, sdktrace.WithSyncer(cfg.SpanExporter))
	case cfg.OTLPEndpoint != "":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("create otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	default:
		exporting = false
	}
	return &Telemetry{
		registry:   reg,
		tracer:     sdktrace.NewTracerProvider(opts...),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		rpc:        rpc,
		exporting:  exporting,
	}, nil
}

// Tracing reports whether spans leave the process: an OTLP endpoint or a
// span exporter is configured.
func (t *Telemetry) Tracing() bool { return t.exporting }

// QueryTracer is the pgx tracer that makes a client span per SQL statement
// (query, batch, connect) as a child of the span in the statement's
// context; statements run outside any span (background polls) make none.
// It is nil when tracing is off, so that nobody pays for spans no one sees.
func (t *Telemetry) QueryTracer() pgx.QueryTracer {
	if !t.exporting {
		return nil
	}
	return otelpgx.NewTracer(
		otelpgx.WithTracerProvider(t.tracer),
		otelpgx.WithMeterProvider(noop.NewMeterProvider()), // metrics come from client_golang
		otelpgx.WithQuerySpanNamePrefix(),                  // "query SELECT", "prepare SELECT", "connect"
	)
}

// TracerProvider is the process's tracer provider, for other
// instrumentation (database, outgoing clients).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracer }

// Propagator is the W3C trace-context and baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// Interceptors are the Connect handler interceptors to put first: a
// server span per call (continuing the caller's trace from traceparent),
// then the per-procedure metrics and the trace id on the access log line.
func (t *Telemetry) Interceptors() ([]connect.Interceptor, error) {
	otel, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(t.tracer),
		otelconnect.WithPropagator(t.propagator),
		// Our callers are our gateway and our clients: a traceparent they
		// send makes our span a child in their trace, not a mere link.
		otelconnect.WithTrustRemote(),
		otelconnect.WithoutMetrics(), // metrics come from client_golang below
	)
	if err != nil {
		return nil, fmt.Errorf("create otelconnect interceptor: %w", err)
	}
	return []connect.Interceptor{otel, t.rpc, traceLogInterceptor{}}, nil
}

// Register adds a collector (e.g. a service's own gauges) to /metrics.
func (t *Telemetry) Register(c prometheus.Collector) error {
	if err := t.registry.Register(c); err != nil {
		return fmt.Errorf("register collector: %w", err)
	}
	return nil
}

// RegisterDB exports the pool statistics of db (open, in use, idle, waits).
func (t *Telemetry) RegisterDB(name string, db *sql.DB) error {
	return t.Register(collectors.NewDBStatsCollector(db, name))
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format, for /metrics.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		Registry:          t.registry,
		EnableOpenMetrics: true,
		ErrorLog:          slogPromLogger{},
	})
}

// Gatherer is the registry, for tests and embedding.
func (t *Telemetry) Gatherer() prometheus.Gatherer { return t.registry }

// Shutdown flushes spans still buffered for export.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.tracer.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shut down tracer provider: %w", err)
	}
	return nil
}

// slogPromLogger sends promhttp's errors to the default logger.
type slogPromLogger struct{}

func (slogPromLogger) Println(v ...any) { slog.Error("serve metrics", "err", fmt.Sprint(v...)) }

// traceLogInterceptor puts the span's trace id on the access log line; it
// runs inside otelconnect's interceptor, where the span is in the context.
type traceLogInterceptor struct{}

func (traceLogInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		logTrace(ctx)
		return next(ctx, req)
	}
}

func (traceLogInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (traceLogInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		logTrace(ctx)
		return next(ctx, conn)
	}
}

func logTrace(ctx context.Context) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		server.AddLogAttrs(ctx, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
}
