package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg"
)

// scrape reads a /metrics page.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(get, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	cfg, key := apptest.Config(t, "auth", "home") // no sender holding the tables
	in := apptest.StartWith(t, cfg, key)
	in.Do(t, get, "/healthz", "", nil).MustOK(t)
	if r := in.Do(t, get, "/readyz", "", nil).MustOK(t); r.JSON["status"] != "ready" {
		t.Fatalf("readyz: %s", r.Raw)
	}
	for service, want := range map[string]string{"": "SERVING", "homes.home.v1.HomeService": "SERVING", "homes.nope.v1.Nope": "not_found"} {
		if got := healthCheck(t, in, service); got != want {
			t.Fatalf("gRPC health of %q: %s, want %s", service, got, want)
		}
	}
	// With a migration rolled back the process is alive but not ready.
	if rolled, err := pg.MigrateDown(context.Background(), in.App.DB()); err != nil || len(rolled) == 0 {
		t.Fatalf("roll back: %v %v", rolled, err)
	}
	in.Do(t, get, "/healthz", "", nil).MustOK(t)
	r := in.Do(t, get, "/readyz", "", nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Raw), "pending") {
		t.Fatalf("readyz with a pending migration: %d %s", r.Status, r.Raw)
	}
	// gRPC health says the same to gRPC load balancers.
	if got := healthCheck(t, in, "homes.home.v1.HomeService"); got != "NOT_SERVING" {
		t.Fatalf("gRPC health with a pending migration: %s, want NOT_SERVING", got)
	}
}

// TestMetricsShowTheRequest: each request shows in /metrics by procedure and
// code, whatever the protocol, next to the runtime, process, database pool
// and sender figures.
func TestMetricsShowTheRequest(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	in.Token(t, authn.RoleClient) // REST
	in.Do(t, get, "/dummyLogin?user_type=admin", "", nil)
	auth := authv1connect.NewAuthServiceClient(in.H2C, in.URL, connect.WithGRPC())
	if _, err := auth.DummyLogin(context.Background(), connect.NewRequest(&authv1.DummyLoginRequest{UserType: "moderator"})); err != nil {
		t.Fatal(err)
	}
	body := in.Do(t, get, "/metrics", "", nil).MustOK(t).Raw
	const proc = `procedure="/homes.auth.v1.AuthService/DummyLogin"`
	for _, want := range []string{
		`homes_rpc_requests_total{code="ok",` + proc + `} 2`,
		`homes_rpc_requests_total{code="invalid_argument",` + proc + `} 1`,
		`homes_rpc_duration_seconds_bucket{code="ok",` + proc + `,le="+Inf"} 2`,
		`homes_rpc_duration_seconds_count{code="invalid_argument",` + proc + `} 1`,
		"go_goroutines ", "process_resident_memory_bytes ",
		`go_sql_open_connections{db_name="homes"}`,
		`homes_deliveries{state="sent"} 0`, "homes_outbox_lag_seconds 0", "homes_delivery_stats_up 1",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestAdminPort: with HOMES_ADMIN_ADDR the metrics leave the service port.
func TestAdminPort(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, func(c *app.Config) { c.AdminAddr = "127.0.0.1:0" })
	in.Token(t, authn.RoleClient)
	if r := in.Do(t, get, "/metrics", "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("service port /metrics: %d", r.Status)
	}
	if !strings.Contains(scrape(t, in.App.AdminHandler()), `homes_rpc_requests_total{code="ok",procedure="/homes.auth.v1.AuthService/DummyLogin"} 1`) {
		t.Fatal("admin /metrics lacks the request")
	}
}

// TestTraceparentContinuesTheTrace: a caller's traceparent makes the server
// span a child in the caller's trace, over REST and gRPC alike, and the
// access log line carries the trace id.
func TestTraceparentContinuesTheTrace(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	logs := &syncBuffer{}
	cfg, key := apptest.Config(t)
	cfg.SpanExporter = spans
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	_ = key
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.EnableHTTP2 = true
	srv.Start()
	t.Cleanup(srv.Close)

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	req, _ := http.NewRequest(get, srv.URL+"/dummyLogin?user_type=client", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parent+"-01")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()

	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans, want 1: %v", len(got), got)
	}
	s := got[0]
	if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != parent ||
		s.Name != "homes.auth.v1.AuthService/DummyLogin" {
		t.Fatalf("span %s trace %s parent %s, want a child of %s in trace %s",
			s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), parent, traceID)
	}

	// The line is written once the answer has left: wait for it.
	var line map[string]any
	for deadline := time.Now().Add(5 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
				line = m
			}
		}
	}
	for field, want := range map[string]any{
		"procedure": "/homes.auth.v1.AuthService/DummyLogin", "code": "ok", "protocol": "rest",
		"status": float64(200), "trace_id": traceID, "path": "/dummyLogin",
	} {
		if line[field] != want {
			t.Errorf("access log %s = %v, want %v (%v)", field, line[field], want, line)
		}
	}
	if line["request_id"] == "" || line["duration_ms"] == nil {
		t.Errorf("access log lacks request id or duration: %v", line)
	}
	if strings.Contains(logs.String(), "user_type") {
		t.Error("the access log shows the query string")
	}
}

// TestNoSecretsInLogs: passwords and tokens never reach the log, at any
// level.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	cfg, _ := apptest.Config(t)
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	in := &apptest.Instance{URL: srv.URL, HTTP1: srv.Client()}
	in.Do(t, post, "/register", "", map[string]any{"email": "s@example.com", "password": "hunter2-secret", "user_type": "client"}).MustOK(t)
	in.Do(t, post, "/login", "", map[string]any{"email": "s@example.com", "password": "wrong-secret"})
	login := in.Do(t, post, "/login", "", map[string]any{"email": "s@example.com", "password": "hunter2-secret"}).MustOK(t)
	in.Do(t, get, "/house/1", login.Str(t, "token"), nil)
	for _, secret := range []string{"hunter2-secret", "wrong-secret", login.Str(t, "token"), login.Str(t, "refresh_token")} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
