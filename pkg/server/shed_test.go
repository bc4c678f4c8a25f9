package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadShedding: with the in-flight limit reached, a REST request gets
// the API.md 503 with Retry-After and an RPC gets Unavailable in its own
// protocol once it has waited maxAdmissionWait; health and metrics answer
// at once; a request whose slot frees while it waits is served.
func TestLoadShedding(t *testing.T) {
	t.Parallel()
	const limit = 2
	entered, release := make(chan struct{}, limit), make(chan struct{})
	busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "served")
	})
	cfg := DefaultConfig("127.0.0.1:0")
	cfg.MaxInFlight = limit
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		Route{Pattern: "GET /busy", Handler: busy}, Route{Pattern: "GET /metrics", Handler: busy},
		Route{Pattern: "POST /pkg.v1.Service/Method", Handler: busy})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	var held sync.WaitGroup
	for range limit {
		held.Go(func() {
			resp, err := http.Get(ts.URL + "/busy?hold")
			if err == nil {
				_ = resp.Body.Close()
			}
		})
	}
	for range limit {
		<-entered
	}

	resp, err := http.Get(ts.URL + "/busy")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		Code      int    `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		body.Code != 503 || !strings.Contains(body.Message, "overloaded") || body.RequestID == "" {
		t.Fatalf("REST over the limit: %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/pkg.v1.Service/Method", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rpcErr struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&rpcErr)
	_ = resp.Body.Close()
	if rpcErr.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("Connect call over the limit: %d %+v", resp.StatusCode, rpcErr)
	}

	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s while saturated: %d", path, resp.StatusCode)
		}
	}

	// A request that finds no slot waits for one: freed within
	// maxAdmissionWait, it is served.
	waited := make(chan int, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/busy")
		if err != nil {
			waited <- 0
			return
		}
		_ = resp.Body.Close()
		waited <- resp.StatusCode
	}()
	time.Sleep(maxAdmissionWait / 5)
	close(release)
	if status := <-waited; status != http.StatusOK {
		t.Fatalf("request waiting for a slot: %d, want 200", status)
	}
	held.Wait()
	resp, err = http.Get(ts.URL + "/busy")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the load: %d", resp.StatusCode)
	}
}
