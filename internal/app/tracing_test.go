package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// startTraced runs every service in one process with its spans going to
// an in-memory exporter, as an OTLP collector would get them.
func startTraced(t *testing.T) (*apptest.Instance, *tracetest.InMemoryExporter) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	in := apptest.Start(t, func(c *app.Config) { c.SpanExporter = spans })
	if !in.App.Telemetry().Tracing() {
		t.Fatal("tracing is off with a span exporter")
	}
	return in, spans
}

// doTraced sends a REST request carrying a W3C traceparent in a fresh
// trace and returns that trace's id.
func doTraced(t *testing.T, in *apptest.Instance, method, path, token string, body any) (trace.TraceID, map[string]any) {
	t.Helper()
	var tid trace.TraceID
	_, _ = rand.Read(tid[:])
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, in.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Traceparent", "00-"+tid.String()+"-00f067aa0ba902b7-01")
	resp, err := in.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return tid, m
}

// spansOf are the ended spans of trace tid, by name.
func spansOf(spans *tracetest.InMemoryExporter, tid trace.TraceID) map[string][]tracetest.SpanStub {
	by := map[string][]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID() == tid {
			by[s.Name] = append(by[s.Name], s)
		}
	}
	return by
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestSQLSpansUnderTheRequest: with tracing on, the SQL a REST request runs
// shows as client spans, children of the request's server span, in the
// caller's trace.
func TestSQLSpansUnderTheRequest(t *testing.T) {
	t.Parallel()
	in, spans := startTraced(t)
	mod := in.Token(t, authn.RoleModerator)
	tid, house := doTraced(t, in, post, "/house/create", mod, map[string]any{"address": "Traced 1", "year": 2000})
	if house["address"] != "Traced 1" {
		t.Fatalf("create house answered %v", house)
	}

	var server tracetest.SpanStub
	var sql []tracetest.SpanStub
	deadline := time.Now().Add(5 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		by := spansOf(spans, tid)
		if len(by["homes.home.v1.HomeService/CreateHouse"]) == 0 {
			continue
		}
		server, sql = by["homes.home.v1.HomeService/CreateHouse"][0], nil
		for _, list := range by {
			for _, s := range list {
				if attr(s, "db.system.name") == "postgresql" {
					sql = append(sql, s)
				}
			}
		}
		break
	}
	if !server.SpanContext.IsValid() {
		t.Fatalf("no server span in trace %s: %v", tid, spans.GetSpans())
	}
	if len(sql) == 0 {
		t.Fatalf("no SQL span in trace %s: %v", tid, spans.GetSpans())
	}
	// Every SQL span descends from the server span; the statements
	// ("query ...") are its children, their prepares and connects below or
	// beside them.
	parent := map[trace.SpanID]trace.SpanID{}
	for _, s := range spans.GetSpans() {
		parent[s.SpanContext.SpanID()] = s.Parent.SpanID()
	}
	under := func(id trace.SpanID) bool {
		for ; id.IsValid(); id = parent[id] {
			if id == server.SpanContext.SpanID() {
				return true
			}
		}
		return false
	}
	var insert bool
	for _, s := range sql {
		if !under(s.SpanContext.SpanID()) || s.SpanKind != trace.SpanKindClient ||
			(strings.HasPrefix(s.Name, "query ") && s.Parent.SpanID() != server.SpanContext.SpanID()) {
			t.Errorf("SQL span %q (kind %v, %s) has parent %s, want the server span %s; %v", s.Name, s.SpanKind, attr(s, "db.query.text"), s.Parent.SpanID(), server.SpanContext.SpanID(), names(spans.GetSpans()))
		}
		if s.Name == "query INSERT" && strings.Contains(attr(s, "db.query.text"), `INSERT INTO "houses"`) {
			insert = true
		}
	}
	if !insert {
		t.Errorf("no span for the house's INSERT among %d SQL spans", len(sql))
	}
}

// TestApprovalTraceReachesTheSend: the trace of the request that approves a
// flat goes through the outbox event into the sender: its fan-out is a
// child of the request's server span and each send a child of the fan-out,
// all in the caller's trace.
func TestApprovalTraceReachesTheSend(t *testing.T) {
	t.Parallel()
	in, spans := startTraced(t)
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	hid := createHouse(t, in, mod, map[string]any{"address": "Traced 2", "year": 2020}).Num(t, "id")
	for _, email := range []string{"t1@example.com", "t2@example.com"} {
		in.Do(t, post, fmt.Sprintf("/house/%d/subscribe", hid), client, map[string]any{"email": email}).MustOK(t)
	}
	fid := createFlat(t, in, client, hid, 100, 2).Num(t, "id")
	in.Do(t, post, "/flat/update", mod, map[string]any{"id": fid, "status": "on moderation"}).MustOK(t)
	tid, flat := doTraced(t, in, post, "/flat/update", mod, map[string]any{"id": fid, "status": "approved"})
	if flat["status"] != "approved" {
		t.Fatalf("approve answered %v", flat)
	}

	var by map[string][]tracetest.SpanStub
	deadline := time.Now().Add(20 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		by = spansOf(spans, tid)
		if len(by["sender.send"]) == 2 {
			break
		}
	}
	if len(by["sender.send"]) != 2 {
		t.Fatalf("%d send spans in trace %s, want 2; spans: %v", len(by["sender.send"]), tid, names(spans.GetSpans()))
	}
	server := by["homes.home.v1.HomeService/UpdateFlat"]
	fanOut := by["sender.fan_out"]
	if len(server) != 1 || len(fanOut) != 1 {
		t.Fatalf("trace %s has %d UpdateFlat and %d fan-out spans, want 1 each", tid, len(server), len(fanOut))
	}
	if fanOut[0].Parent.SpanID() != server[0].SpanContext.SpanID() || fanOut[0].SpanKind != trace.SpanKindConsumer {
		t.Errorf("fan-out parent %s, want the UpdateFlat span %s", fanOut[0].Parent.SpanID(), server[0].SpanContext.SpanID())
	}
	for _, s := range by["sender.send"] {
		if s.Parent.SpanID() != fanOut[0].SpanContext.SpanID() {
			t.Errorf("send parent %s, want the fan-out span %s", s.Parent.SpanID(), fanOut[0].SpanContext.SpanID())
		}
		if attr(s, "homes.flat_id") != fmt.Sprint(fid) {
			t.Errorf("send span attributes %v", s.Attributes)
		}
	}
	// The fan-out's SQL (through watermill's transaction) is in the trace too.
	var fanOutSQL bool
	for _, list := range by {
		for _, s := range list {
			fanOutSQL = fanOutSQL || (s.Parent.SpanID() == fanOut[0].SpanContext.SpanID() && attr(s, "db.system.name") == "postgresql")
		}
	}
	if !fanOutSQL {
		t.Error("no SQL span under the fan-out")
	}
	if got := len(in.Mail.Messages()); got != 2 {
		t.Errorf("%d messages sent, want 2", got)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"@"+s.SpanContext.TraceID().String()[:8]+"/"+s.SpanContext.SpanID().String()[:6]+"<"+s.Parent.SpanID().String()[:6])
	}
	return out
}
