package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/homeservices/homes/pkg/authn"
)

// keys builds the token signer (auth) and the verifier (home). The verifier
// trusts auth's key: local when auth runs here, else from config or JWKS.
func (a *App) keys(ctx context.Context) (*authn.Verifier, *authn.Signer, []ed25519.PublicKey, error) {
	var (
		signer *authn.Signer
		pubs   []ed25519.PublicKey
	)
	if a.cfg.Services["auth"] {
		var key ed25519.PrivateKey
		var err error
		if a.cfg.JWTPrivateKey != "" {
			key, err = authn.ParsePrivateKeyPEM([]byte(a.cfg.JWTPrivateKey))
		} else {
			key, err = authn.LoadOrCreateKey(a.cfg.JWTKeyFile)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load signing key: %w", err)
		}
		signer = authn.NewSigner(key, a.cfg.JWTIssuer, a.cfg.JWTAudience, a.cfg.AccessTokenTTL)
		pubs = append(pubs, key.Public().(ed25519.PublicKey))
	}
	if !a.cfg.Services["home"] {
		return nil, signer, pubs, nil
	}
	if a.cfg.JWTPublicKey != "" {
		pub, err := authn.ParsePublicKeyPEM([]byte(a.cfg.JWTPublicKey))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("parse HOMES_JWT_PUBLIC_KEY: %w", err)
		}
		pubs = append(pubs, pub)
	}
	if a.cfg.JWKSURL != "" {
		fetched, err := fetchJWKS(ctx, a.cfg.JWKSURL, a.log)
		if err != nil {
			return nil, nil, nil, err
		}
		pubs = append(pubs, fetched...)
	}
	if len(pubs) == 0 {
		return nil, nil, nil, errors.New("home runs without auth: set HOMES_JWT_PUBLIC_KEY or HOMES_JWKS_URL")
	}
	return authn.NewVerifier(a.cfg.JWTIssuer, a.cfg.JWTAudience, pubs...), signer, pubs, nil
}

// fetchJWKS retries for a while: in a split deployment auth may start later.
func fetchJWKS(ctx context.Context, url string, log *slog.Logger) ([]ed25519.PublicKey, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys, err := authn.FetchJWKS(ctx, client, url)
		if err == nil {
			return keys, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fetch JWKS from %s: %w", url, err)
		}
		log.Warn("auth's JWKS not reachable yet, retrying", "url", url, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
