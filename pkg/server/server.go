// Package server serves a set of Connect services on one port: Connect
// (JSON and binary), gRPC and gRPC-Web from the generated handlers, the REST
// API of API.md transcoded by vanguard from the google.api.http rules, gRPC
// health and reflection, with request ids, the contract's error body, limits,
// timeouts and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/vanguard"

	"github.com/homeservices/homes/pkg/httpcache"
)

// Config holds the listener's address, limits and timeouts.
type Config struct {
	Addr              string        // host:port to listen on
	MaxBodyBytes      int64         // largest request body accepted
	ReadHeaderTimeout time.Duration // time to read request headers
	ReadTimeout       time.Duration // time to read a whole request
	WriteTimeout      time.Duration // time to write a response
	IdleTimeout       time.Duration // keep-alive idle time
	ShutdownTimeout   time.Duration // time in-flight requests get on shutdown

	// Ready reports whether the process can take traffic (/readyz); nil
	// means always ready. /healthz (liveness) answers 200 regardless.
	Ready func(context.Context) error
	// CORSOrigins are the browser origins allowed to call ("*": any);
	// empty: no CORS headers.
	CORSOrigins []string
	// MaxInFlight is how many requests are served at once; more are shed
	// with 503 and Retry-After (withLoadShedding). 0: no limit.
	MaxInFlight int
}

// DefaultConfig is a production-sane configuration listening on addr.
func DefaultConfig(addr string) Config {
	return Config{
		Addr:              addr,
		MaxBodyBytes:      1 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   20 * time.Second,
		MaxInFlight:       DefaultMaxInFlight,
	}
}

// DefaultMaxInFlight is the default of Config.MaxInFlight. A listing takes
// ~0.5 ms of CPU and the database pool has ~20 connections: 10,000
// requests/s at 5 ms each keep ~50 in flight, so 512 sheds only a real
// overload, while bounding the memory queued requests can hold.
const DefaultMaxInFlight = 512

// Service is one Connect service to serve.
type Service struct {
	Name    string       // fully-qualified, e.g. homes.home.v1.HomeService
	Path    string       // the handler's path prefix, from the generated New…Handler
	Handler http.Handler // the generated Connect handler, built with HandlerOptions
}

// Route is an extra plain-HTTP endpoint, e.g. "GET /.well-known/jwks.json".
// A route with the pattern "/" takes every request no service or other route
// answers (a gateway's proxy), instead of the 404 answer.
type Route struct {
	Pattern string
	Handler http.Handler
}

// RouteOf makes a Route of the pattern and handler that Connect's handler
// constructors return, e.g. RouteOf(grpchealth.NewHandler(checker)).
func RouteOf(pattern string, h http.Handler) Route { return Route{Pattern: pattern, Handler: h} }

// Server is a configured HTTP server for a set of services.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
}

// HandlerOptions are the Connect options every service handler is built
// with: the access log's procedure and code (outermost), the given
// interceptors (telemetry, then authentication), request validation (after
// them, so that authentication answers first), panic recovery, a read
// limit, and the contract's REST JSON codec for the REST shortcuts
// (shortcut.go).
func HandlerOptions(maxBodyBytes int64, interceptors ...connect.Interceptor) ([]connect.HandlerOption, error) {
	v, err := newValidationInterceptor()
	if err != nil {
		return nil, err
	}
	all := append(append([]connect.Interceptor{callInfoInterceptor{}}, interceptors...), v)
	return []connect.HandlerOption{
		connect.WithInterceptors(all...),
		connect.WithRecover(recoverHandler),
		connect.WithReadMaxBytes(int(maxBodyBytes)),
		connect.WithCodec(restCodec{}),
	}, nil
}

func recoverHandler(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
	slog.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", fmt.Sprint(p),
		"request_id", RequestID(ctx))
	return connect.NewError(connect.CodeInternal, errors.New("internal server error"))
}

// New builds the server's handler for services plus extra routes.
func New(cfg Config, log *slog.Logger, services []Service, routes ...Route) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultConfig("").MaxBodyBytes
	}
	vsvcs := make([]*vanguard.Service, 0, len(services))
	names := make([]string, 0, len(services))
	for _, s := range services {
		vsvcs = append(vsvcs, vanguard.NewService(s.Path, s.Handler,
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			// In-process: the handler need not compress for vanguard to
			// decompress (vanguard still compresses for clients that ask).
			vanguard.WithNoTargetCompression(),
			vanguard.WithMaxMessageBufferBytes(uint32(cfg.MaxBodyBytes)),
			vanguard.WithRESTUnmarshalOptions(vanguard.RESTUnmarshalOptions{DiscardUnknownQueryParams: true}),
		))
		names = append(names, s.Name)
	}
	var fallback http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "no such path: "+r.URL.Path, RequestID(r.Context()))
	})
	mux := http.NewServeMux()
	for _, rt := range routes {
		if rt.Pattern == "/" {
			fallback = rt.Handler
			continue
		}
		mux.Handle(rt.Pattern, rt.Handler)
	}
	if len(vsvcs) == 0 {
		mux.Handle("/", fallback)
	} else {
		transcoder, err := vanguard.NewTranscoder(vsvcs,
			vanguard.WithCodec(newJSONCodec),
			vanguard.WithCompression("gzip", newGzipWriter, newClientGzip),
			vanguard.WithUnknownHandler(fallback),
		)
		if err != nil {
			return nil, fmt.Errorf("build transcoder: %w", err)
		}
		mux.Handle("/", transcoder)
		for _, s := range services {
			for _, sc := range shortcutsOf(s, transcoder) {
				if err := handleShortcut(mux, sc); err != nil {
					log.Warn("REST shortcut not served", "pattern", sc.pattern, "err", err)
				}
			}
		}
	}
	// gRPC health and reflection name the services in this process, unless
	// a route serves one of them instead (a gateway, for the services
	// behind it: this process has none).
	reflector := grpcreflect.NewStaticReflector(names...)
	for _, m := range []Route{
		RouteOf(grpchealth.NewHandler(readyChecker{names: names, ready: cfg.Ready})),
		RouteOf(grpcreflect.NewHandlerV1(reflector)),
		RouteOf(grpcreflect.NewHandlerV1Alpha(reflector)),
	} {
		if !slices.ContainsFunc(routes, func(rt Route) bool { return rt.Pattern == m.Pattern }) {
			mux.Handle(m.Pattern, m.Handler)
		}
	}
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /readyz", readyz(cfg.Ready))

	var h http.Handler = mux
	h = withConditionalREST(h)
	h = withContentTypeDefaults(h)
	h = withBodyLimit(h, cfg.MaxBodyBytes)
	h = withErrorBody(h)
	h = withRecover(h)
	h = withLoadShedding(h, cfg.MaxInFlight)
	h = withCORS(h, cfg.CORSOrigins)
	h = withAccessLog(h, log)
	h = withRequestID(h)
	return &Server{cfg: cfg, log: log, handler: h}, nil
}

// Handler returns the whole HTTP handler (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx is done, then
// shuts down gracefully: the listener closes at once, in-flight requests get
// up to ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := Listen(s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Listen opens the TCP listener for addr.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// HTTP/1.1 and unencrypted HTTP/2 (h2c, with prior knowledge, as gRPC
	// clients speak it) on the same port; TLS ends at the load balancer.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           s.handler,
		Protocols:         protocols,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownTimeout.String())
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// withConditionalREST answers a REST GET whose If-None-Match names the ETag
// of the 200 it would get with 304 Not Modified (pkg/httpcache). RPC
// protocols have no such exchange and pass through.
func withConditionalREST(next http.Handler) http.Handler {
	conditional := httpcache.Conditional(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == "" || isRPC(r) {
			next.ServeHTTP(w, r)
			return
		}
		conditional.ServeHTTP(w, r)
	})
}
