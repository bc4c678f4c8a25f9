package authn

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/homeservices/homes/pkg/apperr"
)

// interceptor verifies the bearer token of incoming requests.
type interceptor struct {
	v        *Verifier
	required bool
}

// NewInterceptor returns a handler-side interceptor that verifies the
// "Authorization: Bearer" token and puts its Identity into the context.
// A request without the header continues without an identity, so that public
// RPCs work and protected handlers answer through Require; a present but
// invalid token is rejected with CodeUnauthenticated. On clients it does
// nothing.
func NewInterceptor(v *Verifier) connect.Interceptor {
	return &interceptor{v: v}
}

// NewRequiredInterceptor is NewInterceptor for services whose every RPC
// needs a caller: a request without a token is refused with
// CodeUnauthenticated before anything else (validation included) looks at
// it, so a caller without credentials learns nothing about the input rules.
func NewRequiredInterceptor(v *Verifier) connect.Interceptor {
	return &interceptor{v: v, required: true}
}

// WrapUnary implements connect.Interceptor.
func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; clients pass through.
func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

func (i *interceptor) authenticate(ctx context.Context, h http.Header) (context.Context, error) {
	raw := h.Get("Authorization")
	if raw == "" {
		if i.required {
			return ctx, apperr.ToConnect(ctx, nil, apperr.E(apperr.Unauthenticated, "missing token"))
		}
		return ctx, nil
	}
	token, ok := bearer(raw)
	if !ok {
		return ctx, apperr.ToConnect(ctx, nil, apperr.Wrap(apperr.Unauthenticated,
			errors.New("authorization is not a bearer token"), errInvalidToken.Error()))
	}
	id, err := i.v.Verify(token)
	if err != nil {
		return ctx, apperr.ToConnect(ctx, nil, err)
	}
	return WithIdentity(ctx, id), nil
}

// bearer extracts the token of a "Bearer <token>" header; the scheme is case
// insensitive (RFC 9110).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
