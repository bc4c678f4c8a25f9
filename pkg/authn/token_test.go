package authn_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

const (
	testIssuer   = "homes-auth"
	testAudience = "homes"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// craft signs arbitrary claims, for tokens the Signer would never issue.
func craft(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  uuid.NewString(),
		"role": "client",
		"iss":  testIssuer,
		"aud":  testAudience,
		"iat":  now.Unix(),
		"exp":  now.Add(time.Hour).Unix(),
		"jti":  uuid.NewString(),
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for key, val := range c {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	s := authn.NewSigner(key, testIssuer, testAudience, time.Hour)
	v := authn.NewVerifier(testIssuer, testAudience, pub(newKey(t)), pub(key)) // a rotated set
	for _, role := range []authn.Role{authn.RoleClient, authn.RoleModerator} {
		want := authn.Identity{UserID: uuid.NewString(), Role: role}
		tok, err := s.Sign(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("verify %s token: %v", role, err)
		}
		if got != want {
			t.Fatalf("verify = %+v, want %+v", got, want)
		}
	}
	if s.TTL() != time.Hour {
		t.Fatalf("TTL = %v", s.TTL())
	}
	if !s.PublicKey().Equal(pub(key)) {
		t.Fatal("PublicKey does not match the signing key")
	}
}

func TestSignerHeaderAndClaims(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	s := authn.NewSigner(key, testIssuer, testAudience, time.Hour)
	id := authn.Identity{UserID: uuid.NewString(), Role: authn.RoleModerator}
	a, err := s.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(a, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "EdDSA" || tok.Header["kid"] != authn.KeyID(pub(key)) {
		t.Fatalf("header = %v", tok.Header)
	}
	for _, k := range []string{"sub", "role", "iss", "aud", "iat", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %q missing: %v", k, c)
		}
	}
	var c2 jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(b, &c2); err != nil {
		t.Fatal(err)
	}
	if c["jti"] == c2["jti"] {
		t.Fatal("two tokens share a jti")
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	kid := authn.KeyID(pub(key))
	now := time.Now()
	good := validClaims(now)
	v := authn.NewVerifier(testIssuer, testAudience, pub(key))
	ed := jwt.SigningMethodEdDSA

	tests := []struct {
		name  string
		token string
	}{
		{"expired", sign(t, authn.NewSigner(key, testIssuer, testAudience, -time.Hour))},
		{"wrong issuer", sign(t, authn.NewSigner(key, "evil", testAudience, time.Hour))},
		{"wrong audience", sign(t, authn.NewSigner(key, testIssuer, "other", time.Hour))},
		{"signed by another key", craft(t, ed, other, kid, good)},
		{"another key with its own kid", craft(t, ed, other, authn.KeyID(pub(other)), good)},
		{"alg none", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, good)},
		{"hs256 keyed with the public key", craft(t, jwt.SigningMethodHS256, []byte(pub(key)), kid, good)},
		{"missing kid", craft(t, ed, key, "", good)},
		{"unknown kid", craft(t, ed, key, "nope", good)},
		{"missing exp", craft(t, ed, key, kid, with(good, "exp", nil))},
		{"missing iat", craft(t, ed, key, kid, with(good, "iat", nil))},
		{"iat in the future", craft(t, ed, key, kid, with(good, "iat", now.Add(time.Hour).Unix()))},
		{"missing iss", craft(t, ed, key, kid, with(good, "iss", nil))},
		{"missing aud", craft(t, ed, key, kid, with(good, "aud", nil))},
		{"expired beyond leeway", craft(t, ed, key, kid, with(good, "exp", now.Add(-2*time.Minute).Unix()))},
		{"sub not a uuid", craft(t, ed, key, kid, with(good, "sub", "admin"))},
		{"missing sub", craft(t, ed, key, kid, with(good, "sub", nil))},
		{"unknown role", craft(t, ed, key, kid, with(good, "role", "admin"))},
		{"missing role", craft(t, ed, key, kid, with(good, "role", nil))},
		{"malformed", "not.a.jwt"},
		{"garbage", "!!!"},
		{"empty", ""},
		{"tampered payload", tamper(t, craft(t, ed, key, kid, good))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(tt.token)
			if err == nil {
				t.Fatalf("verify accepted the token: %+v", id)
			}
			if !apperr.Is(err, apperr.Unauthenticated) {
				t.Fatalf("kind = %v, want Unauthenticated (%v)", apperr.KindOf(err), err)
			}
			var e *apperr.Error
			if !errors.As(err, &e) || e.Message != "invalid token" {
				t.Fatalf("client message = %q, want the generic one", e.Message)
			}
		})
	}

	t.Run("within leeway", func(t *testing.T) {
		t.Parallel()
		tok := craft(t, ed, key, kid, with(good, "exp", now.Add(-5*time.Second).Unix()))
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token expired 5s ago rejected: %v", err)
		}
	})
}

// sign issues a client token with s.
func sign(t *testing.T, s *authn.Signer) string {
	t.Helper()
	tok, err := s.Sign(authn.Identity{UserID: uuid.NewString(), Role: authn.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tamper swaps the payload of tok for one with the moderator role, keeping
// the header and signature.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	c := validClaims(time.Now())
	c["role"] = "moderator"
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
