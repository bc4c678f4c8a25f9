// Package app composes the services chosen by configuration into one
// process: one database pool, one HTTP port, the background workers.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/pg/devdb"
	"github.com/homeservices/homes/pkg/server"
	"github.com/homeservices/homes/services/auth"
	"github.com/homeservices/homes/services/home"
	"github.com/homeservices/homes/services/sender"
)

// App is a running composition of services.
type App struct {
	cfg     Config
	log     *slog.Logger
	db      *bun.DB
	server  *server.Server
	workers []func(context.Context) error
	sender  *sender.Sender
}

// New opens the database, applies migrations when configured, and builds
// every service cfg names.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log}
	if err := a.openDB(ctx); err != nil {
		return nil, err
	}
	if err := a.build(ctx); err != nil {
		_ = a.db.Close()
		return nil, err
	}
	return a, nil
}

// OpenDB connects to cfg's database (finding or starting a local one when
// DatabaseURL is empty). migrate and seed use it too.
func OpenDB(ctx context.Context, cfg Config, log *slog.Logger) (*bun.DB, error) {
	url := cfg.DatabaseURL
	if url == "" {
		var err error
		url, err = devdb.Ensure(ctx, cfg.DataDir, log)
		if err != nil {
			return nil, fmt.Errorf("find a database: %w", err)
		}
	}
	return pg.Open(ctx, url, pg.PoolConfig{MaxOpenConns: cfg.DBMaxConns})
}

func (a *App) openDB(ctx context.Context) error {
	db, err := OpenDB(ctx, a.cfg, a.log)
	if err != nil {
		return err
	}
	a.db = db
	if a.cfg.Migrate {
		applied, err := pg.MigrateUp(ctx, db)
		if err != nil {
			_ = db.Close()
			return err
		}
		if len(applied) > 0 {
			a.log.Info("applied migrations", "migrations", applied)
		}
	}
	return nil
}

func (a *App) build(ctx context.Context) error {
	var (
		services []server.Service
		routes   []server.Route
	)
	verifier, signer, pubs, err := a.keys(ctx)
	if err != nil {
		return err
	}
	if a.cfg.Services["auth"] {
		opts, err := server.HandlerOptions(a.cfg.MaxBodyBytes)
		if err != nil {
			return err
		}
		svc := auth.New(auth.Config{
			DummyLogin: a.cfg.DummyLogin,
			BcryptCost: a.cfg.BcryptCost,
			RefreshTTL: a.cfg.RefreshTokenTTL,
		}, a.db, signer, a.log)
		path, h := svc.Handler(opts...)
		services = append(services, server.Service{Name: authv1connect.AuthServiceName, Path: path, Handler: h})
		routes = append(routes, server.Route{Pattern: "GET /.well-known/jwks.json", Handler: authn.JWKSHandler(pubs...)})
	}
	if a.cfg.Services["home"] {
		opts, err := server.HandlerOptions(a.cfg.MaxBodyBytes, authn.NewRequiredInterceptor(verifier))
		if err != nil {
			return err
		}
		svc := home.New(a.db, a.log, a.homeOptions()...)
		path, h := svc.Handler(opts...)
		services = append(services, server.Service{Name: homev1connect.HomeServiceName, Path: path, Handler: h})
	}
	if err := a.buildWorkers(); err != nil {
		return err
	}
	srvCfg := server.DefaultConfig(a.cfg.Addr)
	srvCfg.MaxBodyBytes = a.cfg.MaxBodyBytes
	srvCfg.ShutdownTimeout = a.cfg.ShutdownTimeout
	a.server, err = server.New(srvCfg, a.log, services, routes...)
	return err
}

// keys builds the token signer (auth) and the verifier (home). The verifier
// trusts auth's key: local when auth runs here, else from config or JWKS.
func (a *App) keys(ctx context.Context) (*authn.Verifier, *authn.Signer, []ed25519.PublicKey, error) {
	var (
		signer *authn.Signer
		pubs   []ed25519.PublicKey
	)
	if a.cfg.Services["auth"] {
		var key ed25519.PrivateKey
		var err error
		if a.cfg.JWTPrivateKey != "" {
			key, err = authn.ParsePrivateKeyPEM([]byte(a.cfg.JWTPrivateKey))
		} else {
			key, err = authn.LoadOrCreateKey(a.cfg.JWTKeyFile)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load signing key: %w", err)
		}
		signer = authn.NewSigner(key, a.cfg.JWTIssuer, a.cfg.JWTAudience, a.cfg.AccessTokenTTL)
		pubs = append(pubs, key.Public().(ed25519.PublicKey))
	}
	if !a.cfg.Services["home"] {
		return nil, signer, pubs, nil
	}
	if a.cfg.JWTPublicKey != "" {
		pub, err := authn.ParsePublicKeyPEM([]byte(a.cfg.JWTPublicKey))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("parse HOMES_JWT_PUBLIC_KEY: %w", err)
		}
		pubs = append(pubs, pub)
	}
	if a.cfg.JWKSURL != "" {
		fetched, err := fetchJWKS(ctx, a.cfg.JWKSURL, a.log)
		if err != nil {
			return nil, nil, nil, err
		}
		pubs = append(pubs, fetched...)
	}
	if len(pubs) == 0 {
		return nil, nil, nil, errors.New("home runs without auth: set HOMES_JWT_PUBLIC_KEY or HOMES_JWKS_URL")
	}
	return authn.NewVerifier(a.cfg.JWTIssuer, a.cfg.JWTAudience, pubs...), signer, pubs, nil
}

// fetchJWKS retries for a while: in a split deployment auth may start later.
func fetchJWKS(ctx context.Context, url string, log *slog.Logger) ([]ed25519.PublicKey, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys, err := authn.FetchJWKS(ctx, client, url)
		if err == nil {
			return keys, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fetch JWKS from %s: %w", url, err)
		}
		log.Warn("auth's JWKS not reachable yet, retrying", "url", url, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// Handler is the whole HTTP handler, for tests.
func (a *App) Handler() http.Handler { return a.server.Handler() }

// DB is the process's database pool.
func (a *App) DB() *bun.DB { return a.db }

// Run serves on the configured address and runs the workers until ctx is
// done, then shuts everything down gracefully.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.server.Serve(gctx, ln) })
	for _, w := range a.workers {
		g.Go(func() error { return w(gctx) })
	}
	return g.Wait()
}

// Close releases the database pool.
func (a *App) Close() error { return a.db.Close() }
