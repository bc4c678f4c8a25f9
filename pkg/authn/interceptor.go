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
	policy   Policy // nil: any authenticated caller
}

// Policy says, per procedure (e.g. "/homes.home.v1.HomeService/CreateHouse"),
// which roles may call it. A procedure it does not list is refused to
// everybody: a new RPC is closed until its roles are written down.
type Policy map[string][]Role

// Require is authn.Require with the roles the policy gives procedure.
func (p Policy) Require(ctx context.Context, procedure string) (Identity, error) {
	roles, ok := p[procedure]
	if !ok {
		return Identity{}, apperr.E(apperr.Forbidden, "%s is open to no role", procedure)
	}
	return Require(ctx, roles...)
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
// needs a caller with one of the roles policy gives the procedure: a request
// without a token is refused with CodeUnauthenticated, one with the wrong
// role with CodePermissionDenied, before anything else (validation included)
// looks at it, so a caller without the right credentials learns nothing
// about the input rules.
func NewRequiredInterceptor(v *Verifier, policy Policy) connect.Interceptor {
	return &interceptor{v: v, required: true, policy: policy}
}

// WrapUnary implements connect.Interceptor.
func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authorize(ctx, req.Spec().Procedure, req.Header())
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
		ctx, err := i.authorize(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// authorize authenticates the caller and, under a policy, checks its role
// for the procedure.
func (i *interceptor) authorize(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	ctx, err := i.authenticate(ctx, h)
	if err != nil || i.policy == nil {
		return ctx, err
	}
	if _, err := i.policy.Require(ctx, procedure); err != nil {
		return ctx, apperr.ToConnect(ctx, nil, err)
	}
	return ctx, nil
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
