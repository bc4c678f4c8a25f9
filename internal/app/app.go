// Package app composes the services chosen by configuration into one
// process: one database pool, one HTTP port, the background workers.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/pkg/apidocs"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg"
	"github.com/homeservices/homes/pkg/server"
	"github.com/homeservices/homes/pkg/telemetry"
	"github.com/homeservices/homes/services/auth"
	"github.com/homeservices/homes/services/gateway"
	"github.com/homeservices/homes/services/home"
	"github.com/homeservices/homes/services/sender"
	"github.com/homeservices/homes/web"
)

// App is a running composition of services.
type App struct {
	cfg     Config
	log     *slog.Logger
	db      *bun.DB
	server  *server.Server
	admin   *server.Server // nil unless AdminAddr is set
	workers []func(context.Context) error
	sender  *sender.Sender
	tel     *telemetry.Telemetry
	gateway *gateway.Gateway
}

// New opens the database (unless the process only runs the gateway),
// applies migrations when configured, sets up telemetry and builds every
// service cfg names.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log}
	tel, err := telemetry.New(ctx, telemetry.Config{
		ServiceName:  serviceName(cfg.Services),
		OTLPEndpoint: cfg.OTLPEndpoint,
		SpanExporter: cfg.SpanExporter,
	})
	if err != nil {
		return nil, err
	}
	a.tel = tel
	if a.needsDB() {
		if err := a.openDB(ctx); err != nil {
			return nil, errors.Join(err, a.tel.Shutdown(ctx))
		}
	}
	if err := a.build(ctx); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// needsDB: every service but the gateway keeps its state in PostgreSQL.
func (a *App) needsDB() bool {
	for name, on := range a.cfg.Services {
		if on && name != "gateway" {
			return true
		}
	}
	return false
}

// serviceName names the process in traces: homes-auth, homes-auth+home...
func serviceName(services map[string]bool) string {
	var names []string
	for name, on := range services {
		if on {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return "homes-" + strings.Join(names, "+")
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
	telemetryInterceptors, err := a.tel.Interceptors()
	if err != nil {
		return err
	}
	if a.cfg.Services["auth"] {
		svc := auth.New(auth.Config{
			DummyLogin: a.cfg.DummyLogin,
			BcryptCost: a.cfg.BcryptCost,
			RefreshTTL: a.cfg.RefreshTokenTTL,
		}, a.db, signer, a.log)
		opts, err := server.HandlerOptions(a.cfg.MaxBodyBytes,
			append(slices.Clip(telemetryInterceptors), svc.Interceptor())...)
		if err != nil {
			return err
		}
		path, h := svc.Handler(opts...)
		services = append(services, server.Service{Name: authv1connect.AuthServiceName, Path: path, Handler: h})
		routes = append(routes, server.Route{Pattern: "GET /.well-known/jwks.json", Handler: authn.JWKSHandler(pubs...)})
	}
	if a.cfg.Services["home"] {
		opts, err := server.HandlerOptions(a.cfg.MaxBodyBytes,
			append(slices.Clip(telemetryInterceptors), authn.NewRequiredInterceptor(verifier, home.Roles))...)
		if err != nil {
			return err
		}
		svc := home.New(a.db, a.log, a.homeOptions()...)
		path, h := svc.Handler(opts...)
		services = append(services, server.Service{Name: homev1connect.HomeServiceName, Path: path, Handler: h})
	}
	if (a.cfg.Services["auth"] && a.cfg.Services["home"]) || a.cfg.Services["gateway"] {
		// The browser app (web/) at / and its bundles at /assets/, wherever
		// the whole API is reachable: the all-in-one process and the gateway.
		// Every other path stays with the API (REST 404s keep API.md's body).
		for _, p := range []string{"GET /{$}", "GET /assets/"} {
			routes = append(routes, server.Route{Pattern: p, Handler: web.Handler()})
		}
	}
	if a.cfg.Services["gateway"] {
		a.gateway, err = gateway.New(gateway.Config{AuthURL: a.cfg.AuthURL, HomeURL: a.cfg.HomeURL}, a.log)
		if err != nil {
			return err
		}
		// gRPC health and reflection for the services behind the gateway;
		// whatever this process does not serve itself goes to its service.
		routes = append(routes, a.gateway.Routes()...)
		routes = append(routes, server.Route{Pattern: "/", Handler: a.gateway})
	}
	if err := a.buildWorkers(); err != nil {
		return err
	}
	if err := a.registerMetrics(); err != nil {
		return err
	}
	routes = append(routes, apidocs.Routes()...)

	srvCfg := server.DefaultConfig(a.cfg.Addr)
	srvCfg.MaxBodyBytes = a.cfg.MaxBodyBytes
	srvCfg.MaxInFlight = a.cfg.MaxInFlight
	srvCfg.ShutdownTimeout = a.cfg.ShutdownTimeout
	srvCfg.CORSOrigins = a.cfg.CORSOrigins
	srvCfg.Ready = a.Ready
	metrics := server.Route{Pattern: "GET /metrics", Handler: a.tel.Handler()}
	if a.cfg.AdminAddr == "" {
		routes = append(routes, metrics)
	} else {
		adminCfg := server.DefaultConfig(a.cfg.AdminAddr)
		adminCfg.ShutdownTimeout = a.cfg.ShutdownTimeout
		adminCfg.Ready = a.Ready
		if a.admin, err = server.New(adminCfg, a.log, nil, metrics); err != nil {
			return err
		}
	}
	a.server, err = server.New(srvCfg, a.log, services, routes...)
	return err
}

// registerMetrics adds the database pool and the sender's figures to the
// process's metrics.
func (a *App) registerMetrics() error {
	if a.db != nil {
		if err := a.tel.RegisterDB("homes", a.db.DB); err != nil {
			return err
		}
	}
	if a.sender != nil {
		snd := a.sender
		return a.tel.Register(telemetry.NewDeliveryCollector(func(ctx context.Context) (telemetry.DeliveryStats, error) {
			st, err := snd.Stats(ctx)
			return telemetry.DeliveryStats{
				Pending: st.Pending, Sending: st.Sending, Sent: st.Sent, Failed: st.Failed,
				OldestOpenLag: st.OldestOpenLag, OutboxBacklog: st.OutboxBacklog, OutboxLag: st.OutboxLag,
			}, err
		}))
	}
	return nil
}

// Ready reports whether the process can take traffic (/readyz): its
// database answers and has every migration applied; a gateway's services
// are alive.
func (a *App) Ready(ctx context.Context) error {
	if a.db != nil {
		if err := a.db.PingContext(ctx); err != nil {
			return fmt.Errorf("ping database: %w", err)
		}
		pending, err := pg.Pending(ctx, a.db)
		if err != nil {
			return err
		}
		if pending > 0 {
			return fmt.Errorf("%d migration(s) pending", pending)
		}
	}
	if a.gateway != nil {
		return a.gateway.Ready(ctx)
	}
	return nil
}

// Handler is the whole HTTP handler, for tests.
func (a *App) Handler() http.Handler { return a.server.Handler() }

// AdminHandler is the admin port's handler (/metrics, /healthz, /readyz),
// nil unless AdminAddr is set.
func (a *App) AdminHandler() http.Handler {
	if a.admin == nil {
		return nil
	}
	return a.admin.Handler()
}

// Telemetry is the process's metrics registry and tracer provider.
func (a *App) Telemetry() *telemetry.Telemetry { return a.tel }

// DB is the process's database pool.
func (a *App) DB() *bun.DB { return a.db }

// Run serves on the configured address and runs the workers until ctx is
// done, then shuts everything down gracefully.
func (a *App) Run(ctx context.Context) error {
	ln, err := server.Listen(a.cfg.Addr)
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.server.Serve(gctx, ln) })
	if a.admin != nil {
		g.Go(func() error { return a.admin.Run(gctx) })
	}
	for _, w := range a.workers {
		g.Go(func() error { return w(gctx) })
	}
	return g.Wait()
}

// Close flushes buffered spans and releases the database pool.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.tel.Shutdown(ctx)
	if a.db != nil {
		err = errors.Join(err, a.db.Close())
	}
	return err
}
