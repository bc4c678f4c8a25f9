package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	if field := nulField(m.ProtoReflect(), ""); field != "" {
		// PostgreSQL text cannot hold NUL; refuse it here as bad input
		// rather than fail in the database.
		return connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("invalid %s: must not contain NUL characters", field))
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

// nulField returns the path of the first string field of m (nested messages
// included) that holds a NUL character, or "".
func nulField(m protoreflect.Message, prefix string) string {
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len() && found == ""; i++ {
				found = nulValue(fd, list.Get(i), name)
			}
		case fd.IsMap():
			// No request of the API has a map field.
		default:
			found = nulValue(fd, v, name)
		}
		return found == ""
	})
	return found
}

func nulValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if strings.ContainsRune(v.String(), 0) {
			return name
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == "google.protobuf.StringValue" {
			if inner := nulField(v.Message(), ""); inner != "" {
				return name
			}
			return ""
		}
		return nulField(v.Message(), name+".")
	}
	return ""
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
