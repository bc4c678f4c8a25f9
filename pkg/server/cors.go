package server

import (
	"net/http"
	"strings"

	connectcors "connectrpc.com/cors"
)

// corsMaxAge is how long browsers may cache a preflight answer (seconds).
const corsMaxAge = "7200"

// withCORS lets browser clients on the allowed origins ("*": any) call every
// protocol: REST, Connect and gRPC-Web, with the headers they send and read
// (Grpc-Status, Grpc-Message, X-Request-Id, ...). Tokens travel in the
// Authorization header, never in cookies, so no credentials mode is needed.
func withCORS(next http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return next
	}
	anyOrigin := false
	allowed := map[string]bool{}
	for _, o := range origins {
		if o == "*" {
			anyOrigin = true
		}
		allowed[strings.TrimSuffix(o, "/")] = true
	}
	methods := strings.Join(append(connectcors.AllowedMethods(), http.MethodPut, http.MethodDelete, http.MethodOptions), ", ")
	headers := strings.Join(append(connectcors.AllowedHeaders(),
		"Authorization", RequestIDHeader, "Traceparent", "Tracestate"), ", ")
	exposed := strings.Join(append(connectcors.ExposedHeaders(), RequestIDHeader, "Retry-After"), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || (!anyOrigin && !allowed[origin]) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", headers)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", exposed)
		next.ServeHTTP(w, r)
	})
}
