package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// TestBinaryPerTarget runs the split deployment as compose does, without
// Docker: the built binary once as the one-shot migrate job, then once per
// target (auth, home, sender, gateway) on loopback ports, all on one
// database. The API is used through the gateway only, and a flat approved
// there reaches its subscribers through the sender process.
func TestBinaryPerTarget(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "homes")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dbURL := pgtest.URL(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := authn.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{
		"DATABASE_URL=" + dbURL, "HOMES_ADDR=127.0.0.1:0", "HOMES_MIGRATE=false",
		"HOMES_LOG_LEVEL=info", "HOMES_BCRYPT_COST=4", "HOMES_CORS_ORIGINS=none",
	}
	if out, err := runOnce(bin, append(common, "HOMES_DATA_DIR="+t.TempDir()), "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	auth := startTarget(t, bin, append(common, "HOMES_SERVICES=auth", "HOMES_JWT_PRIVATE_KEY="+string(keyPEM)))
	home := startTarget(t, bin, append(common, "HOMES_SERVICES=home", "HOMES_JWKS_URL="+auth.url+"/.well-known/jwks.json"))
	startTarget(t, bin, append(common, "HOMES_SERVICES=sender",
		"HOMES_MAILER=mock", "HOMES_MOCK_MAX_LATENCY=10ms", "HOMES_MOCK_FAILURE_RATE=0"))
	gw := startTarget(t, bin, append(common, "HOMES_SERVICES=gateway", "HOMES_CORS_ORIGINS=*",
		"HOMES_AUTH_URL="+auth.url, "HOMES_HOME_URL="+home.url))

	rest := func(method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, gw.url+path, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	ok := func(method, path, token string, body any) map[string]any {
		t.Helper()
		status, out := rest(method, path, token, body)
		if status != http.StatusOK {
			t.Fatalf("%s %s: %d %v", method, path, status, out)
		}
		return out
	}
	token := func(role string) string {
		return ok(http.MethodGet, "/dummyLogin?user_type="+role, "", nil)["token"].(string)
	}
	mod, client := token("moderator"), token("client")
	house := ok(http.MethodPost, "/house/create", mod, map[string]any{"address": "Split Street 4", "year": 2024})
	hid := int(house["id"].(float64))
	for _, email := range []string{"one@example.com", "two@example.com"} {
		ok(http.MethodPost, fmt.Sprintf("/house/%d/subscribe", hid), client, map[string]any{"email": email})
	}
	flat := ok(http.MethodPost, "/flat/create", client, map[string]any{"house_id": hid, "price": 4_200_000, "rooms": 2})
	fid := int(flat["id"].(float64))
	if status, out := rest(http.MethodPost, "/flat/update", client, map[string]any{"id": fid, "status": "approved"}); status != http.StatusForbidden {
		t.Fatalf("client approving: %d %v, want 403", status, out)
	}
	if status, out := rest(http.MethodPost, "/flat/create", client, map[string]any{"house_id": hid, "price": -1, "rooms": 2}); status != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(out["message"]), "price") {
		t.Fatalf("invalid price: %d %v, want 400 naming price", status, out)
	}
	ok(http.MethodPost, "/flat/update", mod, map[string]any{"id": fid, "status": "on moderation"})
	ok(http.MethodPost, "/flat/update", mod, map[string]any{"id": fid, "status": "approved"})
	if flats := ok(http.MethodGet, fmt.Sprintf("/house/%d", hid), client, nil)["flats"].([]any); len(flats) != 1 {
		t.Fatalf("client sees %v, want the approved flat", flats)
	}

	db, err := pg.Open(context.Background(), dbURL, pg.PoolConfig{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var sent int
		if err := db.NewRaw("SELECT count(*) FROM deliveries WHERE flat_id = ? AND state = 'sent'", fid).
			Scan(context.Background(), &sent); err != nil {
			t.Fatal(err)
		}
		if sent == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 subscribers notified after 20 s", sent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// target is one running process of the binary.
type target struct {
	url string
}

// startTarget starts the binary's `serve` with env, waits for its
// "listening" log line and stops it with SIGTERM when t ends, wanting a
// clean exit. Its output is in the test log on failure.
func startTarget(t *testing.T, bin string, env []string) target {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	var mu sync.Mutex
	var logged bytes.Buffer
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logged.Write(append(sc.Bytes(), '\n'))
			mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Addr != "" {
				select {
				case addr <- line.Addr:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		<-scanned
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Errorf("%s after SIGTERM: %v\n%s%s", servicesOf(env), err, logged.String(), stderr.String())
		}
	})
	select {
	case a := <-addr:
		return target{url: "http://" + a}
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no listening line in 30 s:\n%s%s", logged.String(), stderr.String())
		return target{}
	}
}

// servicesOf names a target by its HOMES_SERVICES (never the whole
// environment: it holds the signing key).
func servicesOf(env []string) string {
	name := "?"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOMES_SERVICES="); ok {
			name = v
		}
	}
	return name
}

// runOnce runs the binary with args to completion.
func runOnce(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}
