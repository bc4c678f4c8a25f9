package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"connectrpc.com/connect"
)

// callInfo collects, while a request runs, what only the inner layers know
// (the RPC procedure and its outcome, the trace id) for the access log line
// written by the outermost one.
type callInfo struct {
	mu        sync.Mutex
	procedure string
	code      string
	attrs     []slog.Attr
}

type callInfoKey struct{}

func withCallInfo(ctx context.Context) (context.Context, *callInfo) {
	ci := &callInfo{}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

func callInfoFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
	return ci
}

// AddLogAttrs adds attributes to the access log line of the request ctx
// belongs to (e.g. the trace id, from the tracing interceptor). It does
// nothing outside a request served by this package.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	if ci := callInfoFrom(ctx); ci != nil {
		ci.mu.Lock()
		ci.attrs = append(ci.attrs, attrs...)
		ci.mu.Unlock()
	}
}

func (ci *callInfo) set(procedure string, err error) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.procedure = procedure
	ci.code = CodeOf(err)
}

func (ci *callInfo) logAttrs() []slog.Attr {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	var out []slog.Attr
	if ci.procedure != "" {
		out = append(out, slog.String("procedure", ci.procedure), slog.String("code", ci.code))
	}
	return append(out, ci.attrs...)
}

// CodeOf names the outcome of an RPC as metrics and logs show it: "ok", or
// the Connect code ("not_found", "internal", ...).
func CodeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String()
	}
	return connect.CodeUnknown.String()
}

// callInfoInterceptor records the procedure and its code for the access
// log. It is the outermost interceptor, so it sees authentication and
// validation failures too.
type callInfoInterceptor struct{}

func (callInfoInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		if ci := callInfoFrom(ctx); ci != nil {
			ci.set(req.Spec().Procedure, err)
		}
		return resp, err
	}
}

func (callInfoInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (callInfoInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		if ci := callInfoFrom(ctx); ci != nil {
			ci.set(conn.Spec().Procedure, err)
		}
		return err
	}
}
