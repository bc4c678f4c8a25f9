package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// jwk is one Ed25519 key of a JSON Web Key Set (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// maxJWKSBytes bounds what FetchJWKS reads from a remote server.
const maxJWKSBytes = 1 << 20

// JWKSHandler serves keys as a JSON Web Key Set so that other services can
// fetch the verification keys instead of being configured with them.
func JWKSHandler(keys ...ed25519.PublicKey) http.Handler {
	set := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(k),
			Kid: KeyID(k),
			Alg: "EdDSA",
			Use: "sig",
		})
	}
	body, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("marshal jwks: %v", err)) // plain strings cannot fail
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// Short enough that a rotated-in key reaches verifiers before the
		// old key's tokens expire.
		w.Header().Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// FetchJWKS downloads the Ed25519 keys of the JSON Web Key Set at url, for
// NewVerifier. Keys of other types are skipped; a key whose kid does not
// match KeyID is an error, since the Verifier selects keys by KeyID. A nil
// client means http.DefaultClient.
func FetchJWKS(ctx context.Context, client *http.Client, url string) ([]ed25519.PublicKey, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %s", resp.Status)
	}
	var set jwkSet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	var keys []ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("decode jwks key %q: bad x", k.Kid)
		}
		pub := ed25519.PublicKey(x)
		if k.Kid != "" && k.Kid != KeyID(pub) {
			return nil, fmt.Errorf("decode jwks key %q: kid does not match key", k.Kid)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("fetch jwks: no ed25519 keys")
	}
	return keys, nil
}
