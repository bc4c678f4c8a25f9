// Package apptest starts the real binary's composition (internal/app) on a
// loopback port with its own PostgreSQL database, for end-to-end tests over
// real HTTP with real clients.
package apptest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// Instance is one running composition.
type Instance struct {
	URL    string       // http://127.0.0.1:port
	App    *app.App     // for direct database checks
	Config app.Config   // what it was started with
	HTTP1  *http.Client // plain HTTP/1.1 (REST, Connect, gRPC-Web)
	H2C    *http.Client // HTTP/2 without TLS (gRPC)
	Key    ed25519.PrivateKey
	Mail   *Mailbox // what the sender sent, when it runs with the default test mailer
}

// Config returns the test configuration of a process running services on
// a fresh database: all services unless named, fast bcrypt, a fresh key.
func Config(t testing.TB, services ...string) (app.Config, ed25519.PrivateKey) {
	t.Helper()
	cfg, key := baseConfig(t, services...)
	cfg.DatabaseURL = pgtest.URL(t)
	return cfg, key
}

// baseConfig is Config without a database.
func baseConfig(t testing.TB, services ...string) (app.Config, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := authn.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) == 0 {
		services = []string{"auth", "home", "sender"}
	}
	set := map[string]bool{}
	for _, s := range services {
		set[s] = true
	}
	return app.Config{
		Services:        set,
		Addr:            "127.0.0.1:0",
		DataDir:         t.TempDir(),
		Migrate:         true,
		LogLevel:        "error",
		DBMaxConns:      20,
		MaxBodyBytes:    1 << 20,
		ShutdownTimeout: 5 * time.Second,
		JWTPrivateKey:   string(pem),
		JWTIssuer:       "homes-auth",
		JWTAudience:     "homes",
		AccessTokenTTL:  15 * time.Minute,
		RefreshTokenTTL: time.Hour,
		DummyLogin:      true,
		BcryptCost:      4,
		Mailer:          "mock",
		MailFrom:        "homes@localhost",
		MailerOverride:  &Mailbox{},
	}, key
}

// Start runs every service in one process on a loopback port until t ends.
// mutate may adjust the configuration first.
func Start(t testing.TB, mutate ...func(*app.Config)) *Instance {
	t.Helper()
	cfg, key := Config(t)
	for _, m := range mutate {
		m(&cfg)
	}
	return StartWith(t, cfg, key)
}

// StartWith runs the composition cfg describes until t ends.
func StartWith(t testing.TB, cfg app.Config, key ed25519.PrivateKey) *Instance {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("apptest: start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("apptest: serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("apptest: did not shut down in 10s; goroutines:\n%s", buf)
		}
		_ = a.Close()
	})
	return &Instance{
		URL:    "http://" + ln.Addr().String(),
		App:    a,
		Config: cfg,
		HTTP1:  &http.Client{Timeout: 30 * time.Second},
		H2C:    H2CClient(),
		Key:    key,
		Mail:   mailbox(cfg),
	}
}

func mailbox(cfg app.Config) *Mailbox {
	m, _ := cfg.MailerOverride.(*Mailbox)
	return m
}

// H2CClient speaks HTTP/2 over plain TCP, as gRPC clients do.
func H2CClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{Protocols: protocols},
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// BehindAuth returns the configuration of a process running services next
// to the auth instance auth, as a split deployment runs them: the same
// database, no signing key of its own, auth's keys fetched from its JWKS.
func BehindAuth(t testing.TB, auth *Instance, services ...string) app.Config {
	t.Helper()
	cfg, _ := baseConfig(t, services...)
	cfg.DatabaseURL = auth.Config.DatabaseURL
	cfg.JWTPrivateKey = ""
	cfg.JWKSURL = auth.URL + "/.well-known/jwks.json"
	return cfg
}
