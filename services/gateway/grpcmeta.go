package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/homeservices/homes/pkg/server"
)

// Routes are the gateway's own gRPC health and reflection endpoints. They
// take the place of the ones pkg/server builds from the services running in
// the process, which for a gateway are none: reflection describes every
// service the gateway routes (their descriptors are compiled in from gen/),
// and health reports each one as its upstream's readiness.
func (g *Gateway) Routes() []server.Route {
	reflector := grpcreflect.NewStaticReflector(g.services...)
	return []server.Route{
		server.RouteOf(grpchealth.NewHandler(upstreamChecker{g})),
		server.RouteOf(grpcreflect.NewHandlerV1(reflector)),
		server.RouteOf(grpcreflect.NewHandlerV1Alpha(reflector)),
	}
}

// upstreamChecker answers a health check for a service with its upstream's
// /readyz: SERVING when the process that owns it can take traffic (its
// database reachable, migrations applied), NOT_SERVING otherwise, whether
// it answers 503 or not at all. The empty name is the gateway itself,
// serving while it answers.
type upstreamChecker struct{ g *Gateway }

func (c upstreamChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service == "" {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	u, ok := c.g.owners[req.Service]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %s", req.Service))
	}
	if err := c.g.probe(ctx, u, "/readyz"); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, connect.NewError(connect.CodeCanceled, err)
		}
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// probe GETs path on the upstream u and wants a 200.
func (g *Gateway) probe(ctx context.Context, u *url.URL, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath(path).String(), nil)
	if err != nil {
		return fmt.Errorf("build %s request: %w", path, err)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", path, resp.StatusCode)
	}
	return nil
}
