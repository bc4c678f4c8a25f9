package apptest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homeservices/homes/pkg/authn"
)

// Response is a REST answer, decoded.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any // the body when it is a JSON object
}

// Do sends a REST request with an optional bearer token and JSON body
// (a string is sent as is, anything else is marshalled).
func (in *Instance) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := in.HTTP1.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

// MustOK fails t unless r is a 200.
func (r Response) MustOK(t testing.TB) Response {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.Status, r.Raw)
	}
	return r
}

// Num returns a numeric field of the body.
func (r Response) Num(t testing.TB, field string) int {
	t.Helper()
	v, ok := r.JSON[field].(float64)
	if !ok {
		t.Fatalf("field %q is %T (%v), want a JSON number: %s", field, r.JSON[field], r.JSON[field], r.Raw)
	}
	return int(v)
}

// Str returns a string field of the body.
func (r Response) Str(t testing.TB, field string) string {
	t.Helper()
	v, ok := r.JSON[field].(string)
	if !ok {
		t.Fatalf("field %q is %T, want a string: %s", field, r.JSON[field], r.Raw)
	}
	return v
}

// Token logs in through /dummyLogin with the given role.
func (in *Instance) Token(t testing.TB, role authn.Role) string {
	t.Helper()
	return in.Do(t, http.MethodGet, "/dummyLogin?user_type="+string(role), "", nil).MustOK(t).Str(t, "token")
}

// SignToken issues a token with the instance's key but any lifetime (a
// negative one gives an expired token).
func (in *Instance) SignToken(t testing.TB, role authn.Role, ttl time.Duration) string {
	t.Helper()
	s := authn.NewSigner(in.Key, in.Config.JWTIssuer, in.Config.JWTAudience, ttl)
	tok, err := s.Sign(authn.Identity{UserID: "8d6f3a52-6b4e-4f8a-9a39-3f0c2b5f1d10", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
