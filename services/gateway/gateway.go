// Package gateway is the single entry of a split deployment: it routes every
// REST path (from the protos' google.api.http rules) and every RPC path to
// the service that owns it, over HTTP/2 without TLS (h2c), passing Connect,
// gRPC and gRPC-Web through unchanged, trailers included. CORS, request
// ids, the access log and metrics come from pkg/server, which serves it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/pkg/server"
)

// Config holds the base URLs of the services behind the gateway, e.g.
// http://auth:8080.
type Config struct {
	AuthURL string
	HomeURL string
}

// Gateway is an http.Handler proxying each request to its service.
type Gateway struct {
	mux       *http.ServeMux
	upstreams map[string]*url.URL // by service name, for readiness
	client    *http.Client
}

// New builds the routing table from the services' descriptors: their RPC
// prefix and their REST bindings.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{mux: http.NewServeMux(), upstreams: map[string]*url.URL{}}
	transport := newH2CTransport()
	g.client = &http.Client{Transport: transport, Timeout: 5 * time.Second}
	type target struct {
		name    string
		rawURL  string
		service protoreflect.ServiceDescriptor
		extra   []string // plain HTTP routes the service serves
	}
	targets := []target{
		{"auth", cfg.AuthURL, authv1.File_homes_auth_v1_auth_proto.Services().ByName("AuthService"),
			[]string{"GET /.well-known/jwks.json"}},
		{"home", cfg.HomeURL, homev1.File_homes_home_v1_home_proto.Services().ByName("HomeService"), nil},
	}
	for _, t := range targets {
		if t.rawURL == "" {
			return nil, fmt.Errorf("gateway: no URL for the %s service", t.name)
		}
		u, err := url.Parse(t.rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gateway: %s URL %q: want http://host:port", t.name, t.rawURL)
		}
		g.upstreams[t.name] = u
		proxy := newProxy(u, transport, log)
		g.mux.Handle("/"+string(t.service.FullName())+"/", proxy)
		for _, p := range append(restPatterns(t.service), t.extra...) {
			g.mux.Handle(p, proxy)
		}
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		server.WriteError(w, http.StatusNotFound, "no such path: "+r.URL.Path, server.RequestID(r.Context()))
	})
	return g, nil
}

// ServeHTTP routes r to its service.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Ready reports whether every service behind the gateway is alive.
func (g *Gateway) Ready(ctx context.Context) error {
	var errs []error
	for name, u := range g.upstreams {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/healthz").String(), nil)
		if err != nil {
			return fmt.Errorf("build %s health request: %w", name, err)
		}
		resp, err := g.client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: status %d", name, resp.StatusCode))
		}
	}
	return errors.Join(errs...)
}

// restPatterns turns each method's google.api.http bindings into ServeMux
// patterns: "POST /house/{id}/subscribe".
func restPatterns(svc protoreflect.ServiceDescriptor) []string {
	var out []string
	methods := svc.Methods()
	for i := range methods.Len() {
		rule, ok := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule)
		if !ok || rule == nil {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			if p := pattern(r); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func pattern(r *annotations.HttpRule) string {
	var method, path string
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		method, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		method, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		method, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		method, path = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		method, path = p.Custom.GetKind(), p.Custom.GetPath()
	default:
		return ""
	}
	// Templates like {name=shelves/*} and :verb suffixes have no ServeMux
	// equivalent; route their literal prefix instead.
	if i := strings.IndexAny(path, "=*:"); i >= 0 {
		path = path[:strings.LastIndex(path[:i], "/")+1]
	}
	return method + " " + path
}

// newProxy forwards to u unchanged: the path, headers (X-Request-Id,
// traceparent, Authorization, TE: trailers), the body streamed both ways,
// and the response trailers gRPC ends with.
func newProxy(u *url.URL, transport http.RoundTripper, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1, // stream each frame at once
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			log.WarnContext(r.Context(), "upstream unavailable", "upstream", u.Host, "err", err,
				"request_id", server.RequestID(r.Context()))
			// 502: Connect and gRPC clients read it as unavailable.
			server.WriteError(w, http.StatusBadGateway, "upstream unavailable", server.RequestID(r.Context()))
		},
	}
}

// newH2CTransport speaks HTTP/2 with prior knowledge over plain TCP, as
// the services serve it: gRPC needs HTTP/2 end to end.
func newH2CTransport() *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true) // https:// upstreams
	return &http.Transport{
		Protocols:           protocols,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
	}
}
