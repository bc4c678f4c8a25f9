// Package gateway is the single entry of a split deployment: it routes every
// REST path (from the protos' google.api.http rules) and every RPC path to
// the service that owns it, over HTTP/2 without TLS (h2c), passing Connect,
// gRPC and gRPC-Web through unchanged, trailers included. CORS, request
// ids, the access log and metrics come from pkg/server, which serves it.
//
// The gateway is the edge: it alone speaks CORS and names the request. It
// answers every CORS preflight itself, never forwarding one, and drops the
// CORS headers and the X-Request-Id an upstream adds, so that a client sees
// each once however the services behind are configured. It serves gRPC
// health and reflection for the services it routes (Routes), and logs the
// procedure and code of each RPC it proxies.
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
	owners    map[string]*url.URL // by fully-qualified RPC service name, for health
	services  []string            // the RPC services routed, for reflection
	client    *http.Client
}

// New builds the routing table from the services' descriptors: their RPC
// prefix and their REST bindings.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{mux: http.NewServeMux(), upstreams: map[string]*url.URL{}, owners: map[string]*url.URL{}}
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
		svc := string(t.service.FullName())
		g.owners[svc] = u
		g.services = append(g.services, svc)
		proxy := newProxy(u, transport, log)
		g.mux.Handle("/"+svc+"/", withCallLog(proxy))
		for _, p := range append(restPatterns(t.service), t.extra...) {
			g.mux.Handle(p, proxy)
		}
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		server.WriteError(w, http.StatusNotFound, "no such path: "+r.URL.Path, server.RequestID(r.Context()))
	})
	return g, nil
}

// ServeHTTP routes r to its service. A CORS preflight is never forwarded:
// pkg/server's CORS layer in front of the gateway answers those from the
// allowed origins, so one that gets here is refused, with no allow headers
// (an upstream would answer by its own list, letting any origin through).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Add("Vary", "Origin")
		server.WriteError(w, http.StatusForbidden, "CORS preflight refused: origin not allowed", server.RequestID(r.Context()))
		return
	}
	g.mux.ServeHTTP(w, r)
}

// Ready reports whether every service behind the gateway is alive.
func (g *Gateway) Ready(ctx context.Context) error {
	var errs []error
	for name, u := range g.upstreams {
		if err := g.probe(ctx, u, "/healthz"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
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

// newProxy forwards to u unchanged: the path, headers (traceparent,
// Authorization, TE: trailers), the body streamed both ways, and the
// response trailers gRPC ends with. The request carries the gateway's
// request id, so that both access logs name the same request; the answer
// loses the upstream's edge headers (stripEdgeHeaders).
func newProxy(u *url.URL, transport http.RoundTripper, log *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Header.Set(server.RequestIDHeader, server.RequestID(pr.In.Context()))
		},
		ModifyResponse: func(resp *http.Response) error {
			stripEdgeHeaders(resp.Header)
			if c := callFrom(resp.Request.Context()); c != nil {
				return c.observe(resp)
			}
			return nil
		},
		Transport:     transport,
		FlushInterval: -1, // stream each frame at once
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if c := callFrom(r.Context()); c != nil {
				c.err = err
			}
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

// stripEdgeHeaders drops from an upstream's answer what the gateway's
// server already set on it: CORS (Access-Control-*, and Origin in Vary) and
// X-Request-Id. The proxy adds the upstream's headers to the gateway's, so
// an upstream with CORS on would otherwise double them, and browsers reject
// two Access-Control-Allow-Origin values.
func stripEdgeHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	h.Del(server.RequestIDHeader)
	vary := h.Values("Vary")
	if len(vary) == 0 {
		return
	}
	var keep []string
	for _, v := range vary {
		for tok := range strings.SplitSeq(v, ",") {
			switch tok = strings.TrimSpace(tok); {
			case tok == "",
				strings.EqualFold(tok, "Origin"),
				strings.EqualFold(tok, "Access-Control-Request-Method"),
				strings.EqualFold(tok, "Access-Control-Request-Headers"):
			default:
				keep = append(keep, tok)
			}
		}
	}
	h.Del("Vary")
	if len(keep) > 0 {
		h.Set("Vary", strings.Join(keep, ", "))
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
