// Package apperr is the one error vocabulary of the services: domain code
// returns errors with a Kind, and transport code maps kinds to Connect codes
// in exactly one place (ToConnect).
package apperr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
)

// Kind classifies an error for the caller.
type Kind int

// The kinds of error a domain operation can report.
const (
	Internal        Kind = iota // a server-side failure; details are logged, never shown
	Invalid                     // the input breaks a rule (400)
	Unauthenticated             // missing, invalid or expired credentials (401)
	Forbidden                   // valid credentials, wrong role (403)
	NotFound                    // an unknown house, flat or user (404)
	Conflict                    // the state does not allow the operation (409)
	Unavailable                 // a dependency is down; retry later (503)
)

// Error is a domain error with a kind and a message safe to show to clients.
type Error struct {
	Kind    Kind
	Message string
	Err     error // optional cause, logged but never shown
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// E builds an Error of the given kind with a client-safe message.
func E(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an Error of the given kind that keeps err as its hidden cause.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// KindOf reports the kind of err, Internal for errors without one.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err carries the given kind.
func Is(err error, kind Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

var codes = map[Kind]connect.Code{
	Invalid:         connect.CodeInvalidArgument,
	Unauthenticated: connect.CodeUnauthenticated,
	Forbidden:       connect.CodePermissionDenied,
	NotFound:        connect.CodeNotFound,
	Conflict:        connect.CodeAborted, // REST: 409
	Unavailable:     connect.CodeUnavailable,
}

// ToConnect maps err to a Connect error. Errors with a known kind keep their
// message; anything else becomes CodeInternal with a generic message, and the
// cause is logged. Connect errors pass through unchanged.
func ToConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("request timed out"))
	}
	var e *Error
	if errors.As(err, &e) {
		if code, ok := codes[e.Kind]; ok {
			return connect.NewError(code, errors.New(e.Message))
		}
	}
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal server error"))
}
