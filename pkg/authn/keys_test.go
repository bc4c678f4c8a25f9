package authn_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/homeservices/homes/pkg/authn"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "secrets")
	path := filepath.Join(dir, "jwt.pem")
	first, err := authn.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode = %v, want 0700", di.Mode().Perm())
	}
	again, err := authn.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(again) {
		t.Fatal("second load returned a different key")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d files, want 1 (temp file left behind?)", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jwt.pem")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = authn.LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatal("concurrent creators ended with different keys")
		}
	}
}

func TestLoadOrCreateKeyRejectsGarbage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := authn.LoadOrCreateKey(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	privPEM, err := authn.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	gotPriv, err := authn.ParsePrivateKeyPEM(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !gotPriv.Equal(key) {
		t.Fatal("private key changed in a round trip")
	}
	pubPEM, err := authn.MarshalPublicKeyPEM(pub(key))
	if err != nil {
		t.Fatal(err)
	}
	gotPub, err := authn.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !gotPub.Equal(pub(key)) {
		t.Fatal("public key changed in a round trip")
	}
	if _, err := authn.ParsePublicKeyPEM(privPEM); err == nil {
		t.Fatal("private key PEM parsed as a public key")
	}
	if _, err := authn.ParsePrivateKeyPEM(pubPEM); err == nil {
		t.Fatal("public key PEM parsed as a private key")
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	a, b := newKey(t), newKey(t)
	srv := httptest.NewServer(authn.JWKSHandler(pub(a), pub(b)))
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.Header.Get("Cache-Control") == "" {
		t.Fatal("no Cache-Control on the JWKS")
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("jwks has %d keys", len(set.Keys))
	}
	k := set.Keys[0]
	want := map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": authn.KeyID(pub(a))}
	for f, v := range want {
		if k[f] != v {
			t.Errorf("%s = %q, want %q", f, k[f], v)
		}
	}

	keys, err := authn.FetchJWKS(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys[0].Equal(pub(a)) || !keys[1].Equal(pub(b)) {
		t.Fatal("fetched keys differ from the served ones")
	}
	// Fetched keys verify tokens of the signer.
	s := authn.NewSigner(b, testIssuer, testAudience, time.Hour)
	if _, err := authn.NewVerifier(testIssuer, testAudience, keys...).Verify(sign(t, s)); err != nil {
		t.Fatalf("token rejected with fetched keys: %v", err)
	}

	post, err := srv.Client().Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST status = %d", post.StatusCode)
	}
}

func TestFetchJWKSErrors(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusInternalServerError, `{}`},
		{"not json", http.StatusOK, `<html>`},
		{"no keys", http.StatusOK, `{"keys":[]}`},
		{"only other key types", http.StatusOK, `{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}`},
		{"bad x", http.StatusOK, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"short"}]}`},
		{"kid mismatch", http.StatusOK, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"wrong","x":"` + b64(pub(key)) + `"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			if keys, err := authn.FetchJWKS(context.Background(), nil, srv.URL); err == nil {
				t.Fatalf("FetchJWKS = %d keys, want an error", len(keys))
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
