// Package authn issues and verifies the JWT access tokens of the system and
// carries the caller's identity through a request's context.
package authn

import (
	"context"

	"github.com/homeservices/homes/pkg/apperr"
)

// Role is what a user may do.
type Role string

// The roles of API.md.
const (
	RoleClient    Role = "client"
	RoleModerator Role = "moderator"
)

// ParseRole reports the role named s, if s names one.
func ParseRole(s string) (Role, bool) {
	switch Role(s) {
	case RoleClient, RoleModerator:
		return Role(s), true
	}
	return "", false
}

// Identity is the verified caller of a request.
type Identity struct {
	UserID string // a UUID
	Role   Role
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity the interceptor verified, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Require returns the caller's identity when it has one of roles: an
// Unauthenticated error without an identity, Forbidden with another role.
func Require(ctx context.Context, roles ...Role) (Identity, error) {
	id, ok := FromContext(ctx)
	if !ok {
		return Identity{}, apperr.E(apperr.Unauthenticated, "missing or invalid token")
	}
	for _, r := range roles {
		if id.Role == r {
			return id, nil
		}
	}
	return Identity{}, apperr.E(apperr.Forbidden, "role %q may not do this", id.Role)
}
