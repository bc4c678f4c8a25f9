package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
)

// validationInterceptor checks every request against the protovalidate rules
// in proto/ before a handler sees it, so a handler never gets invalid input.
// The error names each offending field: "invalid email: value must be ...".
type validationInterceptor struct {
	validator protovalidate.Validator
}

func newValidationInterceptor() (*validationInterceptor, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("build validator: %w", err)
	}
	return &validationInterceptor{validator: v}, nil
}

func (i *validationInterceptor) check(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := i.validator.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("validate request: %w", err)
	}
	parts := make([]string, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		parts = append(parts, "invalid "+v.String())
	}
	return connect.NewError(connect.CodeInvalidArgument, errors.New(strings.Join(parts, "; ")))
}

// WrapUnary implements connect.Interceptor.
func (i *validationInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := i.check(req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *validationInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *validationInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &validatingConn{StreamingHandlerConn: conn, check: i.check})
	}
}

type validatingConn struct {
	connect.StreamingHandlerConn
	check func(any) error
}

func (c *validatingConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return c.check(msg)
}
