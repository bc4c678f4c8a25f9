package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

// refreshSecretBytes is the entropy of a refresh token.
const refreshSecretBytes = 32

// Errors of refresh tokens. Both say the same to the client: whether a token
// is unknown, expired, revoked or reused is not disclosed.
var (
	errInvalidRefresh = apperr.E(apperr.Unauthenticated, "invalid refresh token")
	errRefreshReused  = apperr.E(apperr.Unauthenticated, "invalid refresh token")
)

// TokenPair is what a login or a refresh hands out.
type TokenPair struct {
	Access    string        // the signed JWT
	Refresh   string        // the refresh token secret, shown only once
	ExpiresIn time.Duration // lifetime of Access
}

// refreshToken is a stored refresh token; the secret itself is never stored,
// only its SHA-256.
type refreshToken struct {
	ID        uuid.UUID
	FamilyID  uuid.UUID // shared by every token rotated from one login
	UserID    uuid.UUID
	Hash      []byte
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

// checkUse reports whether t may be rotated at now: a revoked or expired
// token is errInvalidRefresh; a token used before is errRefreshReused, the
// sign of a stolen token, upon which the caller revokes the family. Reuse is
// checked before expiry, so that replaying an old token still revokes.
func (t refreshToken) checkUse(now time.Time) error {
	switch {
	case t.RevokedAt != nil:
		return errInvalidRefresh
	case t.UsedAt != nil:
		return errRefreshReused
	case !now.Before(t.ExpiresAt):
		return errInvalidRefresh
	}
	return nil
}

// newRefreshSecret returns a random refresh token and the hash to store.
func newRefreshSecret() (secret string, hash []byte, err error) {
	b := make([]byte, refreshSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read random: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashRefreshSecret(secret), nil
}

// hashRefreshSecret is how a presented secret is looked up. A plain SHA-256
// suffices: the secret has 256 bits of entropy, so there is nothing to
// brute-force.
func hashRefreshSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// startFamily issues a token pair for u with a new refresh token family.
func (s *Service) startFamily(ctx context.Context, u User) (TokenPair, error) {
	access, err := s.signer.Sign(authn.Identity{UserID: u.ID.String(), Role: u.Role})
	if err != nil {
		return TokenPair{}, fmt.Errorf("sign access token: %w", err)
	}
	secret, hash, err := newRefreshSecret()
	if err != nil {
		return TokenPair{}, err
	}
	now := time.Now().UTC()
	t := refreshToken{
		ID:        uuid.New(),
		FamilyID:  uuid.New(),
		UserID:    u.ID,
		Hash:      hash,
		ExpiresAt: now.Add(s.cfg.RefreshTTL),
		CreatedAt: now,
	}
	if err := s.store.insertRefreshToken(ctx, t); err != nil {
		return TokenPair{}, err
	}
	return TokenPair{Access: access, Refresh: secret, ExpiresIn: s.signer.TTL()}, nil
}

// refresh rotates the refresh token secret: it is marked used and a new
// token of the same family is issued with a new access token. Presenting a
// used token revokes its family, so a thief and the victim both lose access
// and the victim logs in again.
func (s *Service) refresh(ctx context.Context, secret string) (TokenPair, error) {
	nextSecret, nextHash, err := newRefreshSecret()
	if err != nil {
		return TokenPair{}, err
	}
	now := time.Now().UTC()
	var access string
	err = s.store.rotateRefreshToken(ctx, hashRefreshSecret(secret), now,
		func(cur refreshToken, u User) (refreshToken, error) {
			if err := cur.checkUse(now); err != nil {
				return refreshToken{}, err
			}
			// Signed inside the transaction: if signing failed after the
			// commit, the client would hold a used token and its next
			// attempt would revoke the family.
			a, err := s.signer.Sign(authn.Identity{UserID: u.ID.String(), Role: u.Role})
			if err != nil {
				return refreshToken{}, fmt.Errorf("sign access token: %w", err)
			}
			access = a
			return refreshToken{
				ID:        uuid.New(),
				FamilyID:  cur.FamilyID,
				UserID:    cur.UserID,
				Hash:      nextHash,
				ExpiresAt: now.Add(s.cfg.RefreshTTL),
				CreatedAt: now,
			}, nil
		})
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{Access: access, Refresh: nextSecret, ExpiresIn: s.signer.TTL()}, nil
}

// logout revokes the family of the refresh token secret. It is idempotent:
// an unknown, expired or already revoked token is a successful no-op, so
// that a client can always log out and learns nothing about the token.
func (s *Service) logout(ctx context.Context, secret string) error {
	return s.store.revokeFamilyOf(ctx, hashRefreshSecret(secret), time.Now().UTC())
}
