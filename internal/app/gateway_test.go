package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// startSplit runs the split deployment as compose does: auth, home and
// sender as separate compositions on one database, and the gateway in
// front of auth and home. It returns the gateway and the sender.
func startSplit(t *testing.T) (gw, snd *apptest.Instance) {
	t.Helper()
	authIn, homeIn, snd := startServices(t)
	gw = apptest.StartWith(t, gatewayConfig(t, authIn.URL, homeIn.URL), nil)
	return gw, snd
}

// startServices runs auth, home and sender as startSplit does. auth and
// home keep CORS on for any origin, cmd/homes's default: the gateway must
// keep browsers to its own list all the same, and send its headers once.
func startServices(t *testing.T) (authIn, homeIn, snd *apptest.Instance) {
	t.Helper()
	authCfg, key := apptest.Config(t, "auth")
	authCfg.CORSOrigins = []string{"*"}
	authIn = apptest.StartWith(t, authCfg, key)

	homeCfg := apptest.BehindAuth(t, authIn, "home")
	homeCfg.CORSOrigins = []string{"*"}
	homeIn = apptest.StartWith(t, homeCfg, nil)
	snd = apptest.StartWith(t, apptest.BehindAuth(t, authIn, "sender"), nil)
	return authIn, homeIn, snd
}

// gatewayConfig is a gateway in front of the given auth and home, open to
// appOrigin only.
func gatewayConfig(t *testing.T, authURL, homeURL string) app.Config {
	t.Helper()
	cfg, _ := apptest.Config(t, "gateway")
	cfg.DatabaseURL = "" // the gateway keeps no state
	cfg.AuthURL, cfg.HomeURL = authURL, homeURL
	cfg.CORSOrigins = []string{appOrigin}
	return cfg
}

const appOrigin = "https://app.example.com"

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

	// Validation and the moderation rules answer through the gateway as
	// from home itself: 400 naming the field, 409 for a second moderator,
	// release and decline.
	wantError(t, gw.Do(t, post, "/house/create", mod, map[string]any{"address": "", "year": 2000}), 400, "address")
	wantError(t, gw.Do(t, post, "/flat/create", mod, map[string]any{"house_id": hid, "price": 1, "rooms": 0}), 400, "rooms")
	wantError(t, gw.Do(t, get, "/house/0", client, nil), 400, "id")
	mod2 := gw.Token(t, authn.RoleModerator)
	update := func(tok string, id int, status string) apptest.Response {
		return gw.Do(t, post, "/flat/update", tok, map[string]any{"id": id, "status": status})
	}
	wantError(t, update(mod, fid, "sold"), 400, "status")
	fid2 := createFlat(t, gw, client, hid, 5_000_000, 3).Num(t, "id")
	update(mod, fid2, "on moderation").MustOK(t)
	wantError(t, update(mod2, fid2, "approved"), 409, "") // held by mod
	wantError(t, update(mod2, fid2, "created"), 409, "")  // only the holder releases
	wantError(t, update(mod, fid, "declined"), 409, "")   // approved is final
	// The holder releases the flat; then another moderator may decline it.
	if update(mod, fid2, "created").MustOK(t).Str(t, "status") != "created" {
		t.Fatal("holder could not release the flat")
	}
	update(mod2, fid2, "on moderation").MustOK(t)
	if update(mod2, fid2, "declined").MustOK(t).Str(t, "status") != "declined" {
		t.Fatal("second moderator could not decline the released flat")
	}
	if flats := flatsOf(t, gw.Do(t, get, fmt.Sprintf("/house/%d", hid), mod, nil).MustOK(t)); len(flats) != 2 {
		t.Fatalf("moderator sees %d flats, want 2", len(flats))
	}

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

// TestGatewayEdgeHeaders: with auth and home answering CORS for any origin
// (cmd/homes's default), a client of the gateway still sees one
// Access-Control-Allow-Origin, one X-Request-Id, one of each CORS header,
// over REST and every RPC protocol; and a preflight from an origin the
// gateway does not list is refused there, with no allow headers, although
// the upstream would allow it.
func TestGatewayEdgeHeaders(t *testing.T) {
	t.Parallel()
	gw, _ := startSplit(t)
	once := func(t *testing.T, h http.Header) {
		t.Helper()
		for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "X-Request-Id"} {
			if v := h.Values(k); len(v) != 1 {
				t.Errorf("%s: %q, want exactly one value", k, v)
			}
		}
		if h.Get("Access-Control-Allow-Origin") != appOrigin {
			t.Errorf("Access-Control-Allow-Origin %q, want %s", h.Get("Access-Control-Allow-Origin"), appOrigin)
		}
		if vary := strings.ToLower(strings.Join(h.Values("Vary"), ",")); strings.Count(vary, "origin") != 1 {
			t.Errorf("Vary %q: want Origin once", h.Values("Vary"))
		}
	}

	for _, path := range []string{"/dummyLogin?user_type=client", "/house/424242"} {
		req, _ := http.NewRequest(get, gw.URL+path, nil)
		req.Header.Set("Origin", appOrigin)
		resp, err := gw.HTTP1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		once(t, resp.Header)
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			auth, _ := p.clients(gw)
			req := connect.NewRequest(&authv1.DummyLoginRequest{UserType: "client"})
			req.Header().Set("Origin", appOrigin)
			resp, err := auth.DummyLogin(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			once(t, resp.Header())
			req = connect.NewRequest(&authv1.DummyLoginRequest{UserType: "root"})
			req.Header().Set("Origin", appOrigin)
			_, err = auth.DummyLogin(context.Background(), req)
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
				t.Fatalf("DummyLogin as root: %v", err)
			}
			once(t, ce.Meta())
		})
	}

	for _, path := range []string{"/homes.home.v1.HomeService/CreateHouse", "/house/create", "/dummyLogin"} {
		pre, _ := http.NewRequest(http.MethodOptions, gw.URL+path, nil)
		pre.Header.Set("Origin", "https://evil.example")
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "content-type,authorization")
		resp, err := gw.HTTP1.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: refused preflight answers %d, want 403", path, resp.StatusCode)
		}
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: refused preflight has %s: %v", path, k, resp.Header)
			}
		}
	}
}

// TestGatewayReflectionAndHealth: the gateway process runs no service, yet
// reflection (v1 and v1alpha) describes both services it routes, so buf
// curl can list and call them through it; gRPC health reports each as its
// upstream's readiness.
func TestGatewayReflectionAndHealth(t *testing.T) {
	t.Parallel()
	gw, _ := startSplit(t)
	ctx := context.Background()

	stream := grpcreflect.NewClient(gw.H2C, gw.URL, connect.WithGRPC()).NewStream(ctx)
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{authv1connect.AuthServiceName, homev1connect.HomeServiceName} {
		if !strings.Contains(fmt.Sprint(names), want) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
	files, err := stream.FileContainingSymbol(homev1connect.HomeServiceName)
	if err != nil || len(files) == 0 {
		t.Fatalf("descriptor of HomeService: %v %v", files, err)
	}
	if _, err := stream.Close(); err != nil {
		t.Fatal(err)
	}

	for _, reflect := range []string{"grpc-v1", "grpc-v1alpha"} {
		methods := bufCurl(t, "--http2-prior-knowledge", "--reflect-protocol", reflect, "--list-methods", gw.URL)
		for _, want := range []string{"homes.auth.v1.AuthService/DummyLogin", "homes.home.v1.HomeService/UpdateFlat"} {
			if !strings.Contains(methods, want) {
				t.Fatalf("%s: buf curl --list-methods through the gateway: %q, missing %s", reflect, methods, want)
			}
		}
	}
	if out := bufCurl(t, "--http2-prior-knowledge", "--protocol", "grpc", "-d", `{"user_type":"moderator"}`,
		gw.URL+"/homes.auth.v1.AuthService/DummyLogin"); !strings.Contains(out, `"token"`) {
		t.Fatalf("buf curl DummyLogin through the gateway: %s", out)
	}
	out := bufCurl(t, "--http2-prior-knowledge", "--protocol", "grpc", "-d", `{"service":"homes.home.v1.HomeService"}`,
		gw.URL+"/grpc.health.v1.Health/Check")
	if !strings.Contains(out, `"SERVING"`) {
		t.Fatalf("buf curl health of HomeService through the gateway: %s", out)
	}

	for service, want := range map[string]string{
		homev1connect.HomeServiceName: "SERVING",
		authv1connect.AuthServiceName: "SERVING",
		"":                            "SERVING", // the gateway itself
		"homes.nope.v1.NopeService":   "not_found",
	} {
		if got := healthCheck(t, gw, service); got != want {
			t.Errorf("health of %q: %s, want %s", service, got, want)
		}
	}

	// With home gone, the gateway still serves, home does not.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	_ = ln.Close()
	authURL := gw.Config.AuthURL
	orphan := apptest.StartWith(t, gatewayConfig(t, authURL, deadURL), nil)
	for service, want := range map[string]string{
		homev1connect.HomeServiceName: "NOT_SERVING",
		authv1connect.AuthServiceName: "SERVING",
		"":                            "SERVING",
	} {
		if got := healthCheck(t, orphan, service); got != want {
			t.Errorf("home down: health of %q: %s, want %s", service, got, want)
		}
	}
}

// healthCheck asks in's gRPC health (over Connect JSON) about service: the
// status, or the error code.
func healthCheck(t *testing.T, in *apptest.Instance, service string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"service": service})
	resp, err := in.HTTP1.Post(in.URL+"/grpc.health.v1.Health/Check", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct{ Status, Code string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("health of %q: status %d: %v", service, resp.StatusCode, err)
	}
	if out.Code != "" {
		return out.Code
	}
	return strings.TrimPrefix(out.Status, "SERVING_STATUS_") // the proto enum's prefix
}

// bufCurl runs `buf curl` (tools.mod), which knows only what reflection
// tells it.
func bufCurl(t *testing.T, args ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", append([]string{"tool", "-modfile=tools.mod", "buf", "curl"}, args...)...)
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("buf curl %v: %v", args, err)
	}
	return string(out)
}

// TestGatewayAccessLog: the gateway's access log line of a proxied RPC has
// its procedure and code, as a service's has, whatever the protocol, a
// failed gRPC call included (HTTP status 200, the code in a trailer).
func TestGatewayAccessLog(t *testing.T) {
	t.Parallel()
	authIn, homeIn, _ := startServices(t)
	logs := &syncBuffer{}
	gw := startLogged(t, gatewayConfig(t, authIn.URL, homeIn.URL), slog.New(slog.NewJSONHandler(logs, nil)))

	ctx := context.Background()
	for _, p := range protocols {
		auth, home := p.clients(gw)
		modTok := dummyToken(t, auth, "moderator")
		calls := []struct {
			id, procedure, code string
			call                func(id string) error
		}{
			{"not-found", homev1connect.HomeServiceGetHouseFlatsProcedure, "not_found", func(id string) error {
				req := withToken(&homev1.GetHouseFlatsRequest{Id: 4242}, modTok)
				req.Header().Set("X-Request-Id", id)
				_, err := home.GetHouseFlats(ctx, req)
				return err
			}},
			{"unauthenticated", homev1connect.HomeServiceCreateHouseProcedure, "unauthenticated", func(id string) error {
				req := withToken(&homev1.CreateHouseRequest{Address: "Log 1", Year: 2000}, "")
				req.Header().Set("X-Request-Id", id)
				_, err := home.CreateHouse(ctx, req)
				return err
			}},
			{"invalid", authv1connect.AuthServiceDummyLoginProcedure, "invalid_argument", func(id string) error {
				req := connect.NewRequest(&authv1.DummyLoginRequest{UserType: "root"})
				req.Header().Set("X-Request-Id", id)
				_, err := auth.DummyLogin(ctx, req)
				return err
			}},
			{"ok", homev1connect.HomeServiceCreateHouseProcedure, "ok", func(id string) error {
				req := withToken(&homev1.CreateHouseRequest{Address: "Log 2", Year: 2000}, modTok)
				req.Header().Set("X-Request-Id", id)
				_, err := home.CreateHouse(ctx, req)
				return err
			}},
		}
		for _, c := range calls {
			id := p.name + "-" + c.id
			if err := c.call(id); connect.CodeOf(err).String() != c.code && (c.code != "ok" || err != nil) {
				t.Fatalf("%s: %v, want %s", id, err, c.code)
			}
			line := accessLine(t, logs, id)
			if line["procedure"] != c.procedure || line["code"] != c.code {
				t.Errorf("%s: access log procedure %v code %v status %v, want %s %s",
					id, line["procedure"], line["code"], line["status"], c.procedure, c.code)
			}
		}
	}
}

// startLogged serves the composition cfg describes on a loopback port
// (HTTP/1.1 and h2c) until t ends, logging to log.
func startLogged(t *testing.T, cfg app.Config, log *slog.Logger) *apptest.Instance {
	t.Helper()
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return &apptest.Instance{URL: srv.URL, App: a, Config: cfg,
		HTTP1: &http.Client{Timeout: 30 * time.Second}, H2C: apptest.H2CClient()}
}

// accessLine is the access log line of the request with the given id. The
// line is written once the response is, so it may come a moment after the
// client has its answer.
func accessLine(t *testing.T, logs *syncBuffer, requestID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw := logs.String()
		for line := range strings.SplitSeq(raw, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == requestID {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for request %s in:\n%s", requestID, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
