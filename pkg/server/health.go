package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// readyTimeout bounds one readiness check, so a hung database answers
// "not ready" before the orchestrator's probe gives up.
const readyTimeout = 3 * time.Second

// healthz answers 200 while the process serves at all (liveness).
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, "ok")
}

// readyz answers 200 when ready (e.g. database reachable, migrations
// applied), else 503 with the reason in the API.md error body: the load
// balancer then sends no traffic here, and the orchestrator does not
// restart the process.
func readyz(ready func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ready == nil {
			writeStatus(w, http.StatusOK, "ready")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			WriteError(w, http.StatusServiceUnavailable, "not ready: "+err.Error(), RequestID(r.Context()))
			return
		}
		writeStatus(w, http.StatusOK, "ready")
	}
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
}

// readyChecker is gRPC health (grpc.health.v1) with /readyz's answer: the
// process and each of its services is SERVING when ready, NOT_SERVING when
// not (a gRPC load balancer then skips it as an HTTP one does); a service
// it does not run is not found.
type readyChecker struct {
	names []string
	ready func(context.Context) error
}

// Check implements grpchealth.Checker.
func (c readyChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && !slices.Contains(c.names, req.Service) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %s", req.Service))
	}
	if c.ready != nil {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := c.ready(ctx); err != nil {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
		}
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
