package server

import (
	"errors"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
)

// errOverloaded is what a shed request is told.
var errOverloaded = errors.New("server overloaded: too many requests in flight, retry later")

// withLoadShedding answers at once with 503 Service Unavailable (and
// Retry-After) any request that arrives while max others are in flight,
// instead of queueing it. Under overload the queue would otherwise grow
// without bound — every waiting request holds a goroutine, buffers and a
// connection, and the process runs out of memory or file descriptors —
// and every request would get slow, not only the excess. REST callers get
// the API.md error body, RPC callers Unavailable in their own protocol.
// Health, readiness and metrics are never shed: probes must see a busy
// process as alive. max <= 0 turns shedding off.
func withLoadShedding(next http.Handler, max int) http.Handler {
	if max <= 0 {
		return next
	}
	slots := make(chan struct{}, max)
	rpcErrors := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			if isRPC(r) && rpcErrors.IsSupported(r) {
				_ = rpcErrors.Write(w, r, connect.NewError(connect.CodeUnavailable, errOverloaded))
				return
			}
			WriteError(w, http.StatusServiceUnavailable, errOverloaded.Error(), RequestID(r.Context()))
		}
	})
}
