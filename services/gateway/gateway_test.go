package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/homeservices/homes/pkg/server"
	"github.com/homeservices/homes/services/gateway"
)

const appOrigin = "https://app.example.com"

// upstream is a service behind the gateway that records what reaches it
// and answers as answer says, with the edge headers a service with CORS on
// ("*") and its own request id sends.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func startUpstream(t *testing.T, answer http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.mu.Unlock()
		h := w.Header()
		h.Set("X-Request-Id", "upstream-"+r.Header.Get("X-Request-Id"))
		if o := r.Header.Get("Origin"); o != "" {
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Expose-Headers", "Grpc-Status, X-Request-Id")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		answer(w, r)
	}))
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // the gateway speaks h2c only
	u.Config.Protocols = protocols
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.seen...)
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// accessLine is the access log line of the request with the given id.
func (b *logBuffer) accessLine(t *testing.T, requestID string) map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == requestID {
			return m
		}
	}
	t.Fatalf("no access log line for request %s in:\n%s", requestID, b.buf.String())
	return nil
}

// startGateway serves a gateway in front of up (both services) as
// internal/app does: pkg/server with CORS for appOrigin, the gateway's
// health and reflection, the gateway for every other path.
func startGateway(t *testing.T, up string) (*httptest.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	gw, err := gateway.New(gateway.Config{AuthURL: up, HomeURL: up}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig("")
	cfg.CORSOrigins = []string{appOrigin}
	srv, err := server.New(cfg, log, nil, append(gw.Routes(), server.Route{Pattern: "/", Handler: gw})...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	ts.Config.Protocols = protocols
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, logs
}

func h2cClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols}}
}

func do(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

// TestPreflightsStayAtTheEdge: the gateway answers every preflight, allowed
// or not, and forwards none; an unlisted origin gets no allow headers even
// though the upstream would allow any.
func TestPreflightsStayAtTheEdge(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {})
	gw, _ := startGateway(t, up.URL)
	for _, path := range []string{"/homes.home.v1.HomeService/CreateHouse", "/house/create", "/no/such/path"} {
		for _, origin := range []string{appOrigin, "https://evil.example", ""} {
			req, _ := http.NewRequest(http.MethodOptions, gw.URL+path, nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,authorization")
			resp := do(t, http.DefaultClient, req)
			h := resp.Header
			if origin == appOrigin {
				if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != appOrigin ||
					len(h.Values("Access-Control-Allow-Origin")) != 1 || h.Get("Access-Control-Allow-Methods") == "" {
					t.Errorf("%s from %s: %d %v", path, origin, resp.StatusCode, h)
				}
				continue
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s from %q: status %d, want 403", path, origin, resp.StatusCode)
			}
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s from %q: refused preflight has %s: %v", path, origin, k, h)
				}
			}
		}
	}
	if seen := up.requests(); len(seen) != 0 {
		t.Fatalf("%d preflight(s) reached the upstream: %s %s", len(seen), seen[0].Method, seen[0].URL)
	}
}

// TestEdgeHeadersOnce: a proxied answer carries the gateway's CORS headers
// and request id once each, the upstream's dropped; the upstream got the
// gateway's request id, so both logs name the same request.
func TestEdgeHeadersOnce(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	gw, _ := startGateway(t, up.URL)
	for _, clientIDs := range [][]string{nil, {"client-chosen-id"}, {"first-id", "second-id"}} {
		clientID := ""
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/house/1", nil)
		req.Header.Set("Origin", appOrigin)
		for _, id := range clientIDs {
			clientID = clientIDs[0]
			req.Header.Add("X-Request-Id", id)
		}
		resp := do(t, http.DefaultClient, req)
		h := resp.Header
		for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "X-Request-Id"} {
			if len(h.Values(k)) != 1 {
				t.Errorf("%s: %q, want one value", k, h.Values(k))
			}
		}
		if h.Get("Access-Control-Allow-Origin") != appOrigin {
			t.Errorf("Access-Control-Allow-Origin %q", h.Get("Access-Control-Allow-Origin"))
		}
		vary := strings.ToLower(strings.Join(h.Values("Vary"), ","))
		if strings.Count(vary, "origin") != 1 || !strings.Contains(vary, "accept-encoding") {
			t.Errorf("Vary %q: want Origin once, and the upstream's Accept-Encoding", h.Values("Vary"))
		}
		id := h.Get("X-Request-Id")
		if clientID != "" && id != clientID {
			t.Errorf("request id %q, want the client's %q", id, clientID)
		}
		seen := up.requests()
		if got := seen[len(seen)-1].Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
			t.Errorf("upstream got request id %q, the client %q", got, id)
		}
	}
	// Without an Origin the gateway adds no CORS headers, nor lets the
	// upstream's through.
	resp := do(t, http.DefaultClient, must(http.NewRequest(http.MethodGet, gw.URL+"/house/1", nil)))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS headers without an Origin: %v", resp.Header)
	}
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}

// envelope frames payload as Connect streaming and gRPC-Web do.
func envelope(flags byte, payload []byte) []byte {
	out := make([]byte, 5, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(payload)))
	return append(out, payload...)
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCallLog: each RPC the gateway proxies gets its access log line's
// procedure (from the path) and code (from wherever its protocol puts it),
// as a service's Connect interceptors give its own.
func TestCallLog(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		contentType string
		answer      func(w http.ResponseWriter)
		want        string
	}{
		{"grpc trailer", "application/grpc", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			_, _ = w.Write(envelope(0, []byte("msg")))
			w.Header().Set("Grpc-Status", "5")
			w.Header().Set("Grpc-Message", "no such house")
		}, "not_found"},
		{"grpc ok", "application/grpc+proto", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			_, _ = w.Write(envelope(0, nil))
			w.Header().Set("Grpc-Status", "0")
		}, "ok"},
		{"grpc trailers-only", "application/grpc", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "16")
		}, "unauthenticated"},
		{"grpc-web", "application/grpc-web+proto", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc-web+proto")
			body := append(envelope(0, bytes.Repeat([]byte("x"), 70_000)), envelope(0x80, []byte("Grpc-Status: 3\r\ngrpc-message: bad\r\n"))...)
			for len(body) > 0 { // in small writes, to split frames
				n := min(len(body), 1000)
				_, _ = w.Write(body[:n])
				body = body[n:]
			}
		}, "invalid_argument"},
		{"grpc-web trailers-only", "application/grpc-web", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc-web")
			w.Header().Set("Grpc-Status", "7")
		}, "permission_denied"},
		{"connect unary error", "application/json", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"code":"aborted","message":"held by another moderator"}`)
		}, "aborted"},
		{"connect unary gzip error", "application/proto", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(gzipped(t, `{"code":"not_found"}`))
		}, "not_found"},
		{"connect unary ok", "application/proto", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/proto")
		}, "ok"},
		{"connect unary not an error body", "application/json", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>")
		}, "unknown"},
		{"connect stream error", "application/connect+proto", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/connect+proto")
			w.Header().Set("Connect-Content-Encoding", "gzip")
			_, _ = w.Write(envelope(0, []byte("msg")))
			_, _ = w.Write(envelope(0x03, gzipped(t, `{"error":{"code":"internal"}}`)))
		}, "internal"},
		{"connect stream ok", "application/connect+json", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/connect+json")
			_, _ = w.Write(envelope(0x02, []byte(`{}`)))
		}, "ok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) { c.answer(w) })
			gw, logs := startGateway(t, up.URL)
			req, _ := http.NewRequest(http.MethodPost, gw.URL+"/homes.home.v1.HomeService/GetHouseFlats", strings.NewReader("x"))
			req.Header.Set("Content-Type", c.contentType)
			req.Header.Set("X-Request-Id", "call-"+strings.ReplaceAll(c.name, " ", "-"))
			do(t, h2cClient(), req)
			line := logs.accessLine(t, req.Header.Get("X-Request-Id"))
			if line["procedure"] != "/homes.home.v1.HomeService/GetHouseFlats" || line["code"] != c.want {
				t.Fatalf("access log procedure %v code %v, want code %s: %v", line["procedure"], line["code"], c.want, line)
			}
		})
	}

	t.Run("upstream down", func(t *testing.T) {
		t.Parallel()
		up := startUpstream(t, func(http.ResponseWriter, *http.Request) {})
		up.Close()
		gw, logs := startGateway(t, up.URL)
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/homes.auth.v1.AuthService/Login", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "call-down")
		if resp := do(t, http.DefaultClient, req); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
		if line := logs.accessLine(t, "call-down"); line["procedure"] != "/homes.auth.v1.AuthService/Login" || line["code"] != "unavailable" {
			t.Fatalf("access log: %v", line)
		}
	})

	t.Run("rest has no procedure", func(t *testing.T) {
		t.Parallel()
		up := startUpstream(t, func(http.ResponseWriter, *http.Request) {})
		gw, logs := startGateway(t, up.URL)
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/house/1", nil)
		req.Header.Set("X-Request-Id", "rest-1")
		do(t, http.DefaultClient, req)
		if line := logs.accessLine(t, "rest-1"); line["procedure"] != nil || line["code"] != nil {
			t.Fatalf("REST request logged as an RPC: %v", line)
		}
	})
}
