package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// startSplit runs the split deployment as compose does: auth, home and
// sender as separate compositions on one database, and the gateway in
// front of auth and home. It returns the gateway and the sender.
func startSplit(t *testing.T) (gw, snd *apptest.Instance) {
	t.Helper()
	authCfg, key := apptest.Config(t, "auth")
	authIn := apptest.StartWith(t, authCfg, key)

	homeIn := apptest.StartWith(t, apptest.BehindAuth(t, authIn, "home"), nil)
	snd = apptest.StartWith(t, apptest.BehindAuth(t, authIn, "sender"), nil)

	gwCfg, _ := apptest.Config(t, "gateway")
	gwCfg.DatabaseURL = "" // the gateway keeps no state
	gwCfg.AuthURL, gwCfg.HomeURL = authIn.URL, homeIn.URL
	gwCfg.CORSOrigins = []string{"https://app.example.com"}
	gw = apptest.StartWith(t, gwCfg, key)
	return gw, snd
}

// TestGatewayREST runs every endpoint of API.md through the gateway of a
// split deployment, down to a subscriber's email sent by the sender process.
func TestGatewayREST(t *testing.T) {
	t.Parallel()
	gw, snd := startSplit(t)

	mod, client := gw.Token(t, authn.RoleModerator), gw.Token(t, authn.RoleClient)
	wantError(t, gw.Do(t, get, "/dummyLogin?user_type=admin", "", nil), 400, "user_type")
	reg := gw.Do(t, post, "/register", "", map[string]any{"email": "gw@example.com", "password": "password1", "user_type": "client"}).MustOK(t)
	login := gw.Do(t, post, "/login", "", map[string]any{"id": reg.Str(t, "user_id"), "password": "password1"}).MustOK(t)
	next := gw.Do(t, post, "/refresh", "", map[string]any{"refresh_token": login.Str(t, "refresh_token")}).MustOK(t)
	gw.Do(t, post, "/logout", "", map[string]any{"refresh_token": next.Str(t, "refresh_token")}).MustOK(t)
	gw.Do(t, get, "/.well-known/jwks.json", "", nil).MustOK(t)
	page := gw.Do(t, get, "/", "", nil).MustOK(t)
	if !strings.Contains(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page.Raw), "<script") {
		t.Fatalf("gateway does not serve the web app at /: %s %.200s", page.Header.Get("Content-Type"), page.Raw)
	}

	hid := createHouse(t, gw, mod, map[string]any{"address": "Gateway 1", "year": 2020}).Num(t, "id")
	wantError(t, gw.Do(t, post, "/house/create", client, map[string]any{"address": "x", "year": 2000}), 403, "")
	wantError(t, gw.Do(t, post, "/house/create", "", map[string]any{"address": "x", "year": 2000}), 401, "")
	gw.Do(t, post, fmt.Sprintf("/house/%d/subscribe", hid), client, map[string]any{"email": "sub@example.com"}).MustOK(t)
	fid := createFlat(t, gw, client, hid, 4_000_000, 2).Num(t, "id")
	for _, status := range []string{"on moderation", "approved"} {
		gw.Do(t, post, "/flat/update", mod, map[string]any{"id": fid, "status": status}).MustOK(t)
	}
	if flats := flatsOf(t, gw.Do(t, get, fmt.Sprintf("/house/%d", hid), client, nil).MustOK(t)); len(flats) != 1 {
		t.Fatalf("client sees %d flats, want 1", len(flats))
	}
	wantError(t, gw.Do(t, get, "/house/424242", client, nil), 404, "")
	wantError(t, gw.Do(t, get, "/no/such/path", "", nil), 404, "")

	// The gateway's own endpoints.
	gw.Do(t, get, "/healthz", "", nil).MustOK(t)
	gw.Do(t, get, "/readyz", "", nil).MustOK(t)
	gw.Do(t, get, "/openapi.yaml", "", nil).MustOK(t)

	deadline := time.Now().Add(20 * time.Second)
	for len(snd.Mail.Messages()) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var to []string
	for _, m := range snd.Mail.Messages() {
		to = append(to, m.To)
	}
	sort.Strings(to)
	if fmt.Sprint(to) != "[sub@example.com]" {
		t.Fatalf("sender mailed %v, want sub@example.com once", to)
	}
}

// TestGatewayRPC: Connect, gRPC (trailers and all) and gRPC-Web pass the
// gateway unchanged, errors included; browsers get the CORS answers.
func TestGatewayRPC(t *testing.T) {
	t.Parallel()
	gw, _ := startSplit(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			auth, home := p.clients(gw)
			modTok := dummyToken(t, auth, "moderator")
			house, err := home.CreateHouse(ctx, withToken(&homev1.CreateHouseRequest{Address: "RPC 1", Year: 2001}, modTok))
			if err != nil || house.Msg.GetHouse().GetId() == 0 {
				t.Fatalf("create house: %v %v", house, err)
			}
			_, err = home.GetHouseFlats(ctx, withToken(&homev1.GetHouseFlatsRequest{Id: 4242}, modTok))
			wantCode(t, err, connect.CodeNotFound)
			_, err = home.GetHouseFlats(ctx, withToken(&homev1.GetHouseFlatsRequest{Id: 1}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}

	pre, err := http.NewRequest(http.MethodOptions, gw.URL+"/homes.home.v1.HomeService/CreateHouse", nil)
	if err != nil {
		t.Fatal(err)
	}
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,authorization")
	resp, err := gw.HTTP1.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!containsFold(h.Get("Access-Control-Allow-Headers"), "X-Grpc-Web") || !containsFold(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	r := gw.Do(t, get, "/healthz", "", nil)
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers without an Origin")
	}
	req, _ := http.NewRequest(get, gw.URL+"/dummyLogin?user_type=client", nil)
	req.Header.Set("Origin", "https://app.example.com")
	resp, err = gw.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, want := range []string{"Grpc-Status", "Grpc-Message", "X-Request-Id"} {
		if !containsFold(resp.Header.Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("exposed headers %q lack %s", resp.Header.Get("Access-Control-Expose-Headers"), want)
		}
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err = gw.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an unlisted origin")
	}
}

func containsFold(list, want string) bool {
	return strings.Contains(strings.ToLower(list), strings.ToLower(want))
}
