package authn

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/homeservices/homes/pkg/apperr"
)

// leeway absorbs clock skew between the issuing and the verifying host.
const leeway = 30 * time.Second

// claims is the payload of an access token.
type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// KeyID names pub in the "kid" header of tokens and in the JWKS: the
// unpadded base64url encoding of the first 8 bytes of its SHA-256. Deriving
// it from the key lets a verifier pick the key without any shared registry.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// Signer issues EdDSA-signed access tokens.
type Signer struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
}

// NewSigner returns a Signer that issues tokens from issuer for audience,
// valid for ttl.
func NewSigner(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration) *Signer {
	return &Signer{
		key:      key,
		kid:      KeyID(key.Public().(ed25519.PublicKey)),
		issuer:   issuer,
		audience: audience,
		ttl:      ttl,
	}
}

// TTL is how long the tokens of s are valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

// PublicKey is the key that verifies the tokens of s.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign issues an access token for id.
func (s *Signer) Sign(id Identity) (string, error) {
	now := time.Now()
	c := claims{
		Role: string(id.Role),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.UserID,
			Issuer:    s.issuer,
			Audience:  jwt.ClaimStrings{s.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
			ID:        uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// Verifier checks access tokens locally against a set of public keys.
type Verifier struct {
	keys   map[string]ed25519.PublicKey
	parser *jwt.Parser
	cache  *verifiedCache // tokens already verified (cache.go)
}

// NewVerifier returns a Verifier that accepts tokens from issuer for audience
// signed by any of keys. Several keys allow a key rotation without
// invalidating tokens already issued.
func NewVerifier(issuer, audience string, keys ...ed25519.PublicKey) *Verifier {
	m := make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		m[KeyID(k)] = k
	}
	return &Verifier{
		keys:  m,
		cache: newVerifiedCache(),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
		),
	}
}

// errInvalidToken is every verification failure as the client sees it: the
// reason is never disclosed.
var errInvalidToken = errors.New("invalid token")

// Verify checks token and returns the identity it carries. Every failure is
// an apperr Unauthenticated error with the same generic message.
func (v *Verifier) Verify(token string) (Identity, error) {
	if id, ok := v.cache.get(token); ok {
		return id, nil
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, v.key)
	if err != nil {
		return Identity{}, unauthenticated(err)
	}
	if c.IssuedAt == nil {
		return Identity{}, unauthenticated(errors.New("missing iat"))
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return Identity{}, unauthenticated(fmt.Errorf("parse sub: %w", err))
	}
	role, ok := ParseRole(c.Role)
	if !ok {
		return Identity{}, unauthenticated(fmt.Errorf("unknown role %q", c.Role))
	}
	id := Identity{UserID: c.Subject, Role: role}
	v.cache.put(token, id, c.ExpiresAt.Time)
	return id, nil
}

// key picks the verification key by the token's kid.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("missing kid")
	}
	k, ok := v.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return k, nil
}

func unauthenticated(cause error) error {
	return apperr.Wrap(apperr.Unauthenticated, cause, errInvalidToken.Error())
}
