package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
)

// errOverloaded is what a shed request is told.
var errOverloaded = errors.New("server overloaded: too many requests in flight, retry later")

// maxAdmissionWait is how long a request waits for one of the in-flight
// slots before it is shed.
const maxAdmissionWait = time.Second

// withLoadShedding lets at most max requests be served at once. One that
// arrives while max others are in flight waits for a slot, up to
// maxAdmissionWait, then is answered 503 Service Unavailable with
// Retry-After. Without the limit an overload grows the number of requests
// in the handlers without bound — each holds its buffers, protos and a
// wait on the database pool (measured: 4,000 connections took the process
// to ~900 MiB) — until memory or file descriptors run out; a waiting
// request holds only its connection and headers. Shedding only after a
// wait, not at once, keeps the throughput of clients that do not honour
// Retry-After: rejected at once they come straight back, and the server
// spends its CPU on refusals. REST callers get the API.md error body, RPC
// callers Unavailable in their own protocol. Health, readiness and metrics
// are never held: probes must see a busy process as alive. max <= 0 turns
// the limit off.
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
		if !admit(r.Context(), slots) {
			if r.Context().Err() != nil {
				return // the client is gone
			}
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			if isRPC(r) && rpcErrors.IsSupported(r) {
				_ = rpcErrors.Write(w, r, connect.NewError(connect.CodeUnavailable, errOverloaded))
				return
			}
			WriteError(w, http.StatusServiceUnavailable, errOverloaded.Error(), RequestID(r.Context()))
			return
		}
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}

// admit takes a slot, waiting up to maxAdmissionWait when none is free.
func admit(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	wait := time.NewTimer(maxAdmissionWait)
	defer wait.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-wait.C:
		return false
	case <-ctx.Done():
		return false
	}
}
