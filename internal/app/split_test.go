package app_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestSplitDeployment runs auth and home as two processes' worth of
// composition on one database: home verifies auth's tokens with the key it
// fetched from auth's JWKS, or with the public key from its configuration,
// without calling auth per request.
func TestSplitDeployment(t *testing.T) {
	t.Parallel()
	authCfg, key := apptest.Config(t, "auth")
	authIn := apptest.StartWith(t, authCfg, key)

	homeIn := apptest.StartWith(t, apptest.BehindAuth(t, authIn, "home"), nil)

	pub, err := authn.MarshalPublicKeyPEM(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	viaKey := apptest.BehindAuth(t, authIn, "home")
	viaKey.JWKSURL = ""
	viaKey.JWTPublicKey = string(pub)
	homeIn2 := apptest.StartWith(t, viaKey, nil)

	mod := authIn.Token(t, authn.RoleModerator)
	h := homeIn.Do(t, post, "/house/create", mod, map[string]any{"address": "Split 1", "year": 1999}).MustOK(t)
	homeIn2.Do(t, get, fmt.Sprintf("/house/%d", h.Num(t, "id")), mod, nil).MustOK(t)

	// Each process serves only its own services.
	wantError(t, homeIn.Do(t, get, "/dummyLogin?user_type=client", "", nil), 404, "")
	wantError(t, authIn.Do(t, get, "/house/1", mod, nil), 404, "")
	// A token of another auth (another key) is refused by home.
	stranger := apptest.Start(t, func(c *app.Config) {})
	wantError(t, homeIn.Do(t, get, "/house/1", stranger.Token(t, authn.RoleModerator), nil), 401, "")
}
