package app_test

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/internal/app/apptest"
)

type protocol struct {
	name   string
	client func(in *apptest.Instance) *http.Client
	opts   []connect.ClientOption
}

var protocols = []protocol{
	{"connect-json", func(in *apptest.Instance) *http.Client { return in.HTTP1 }, []connect.ClientOption{connect.WithProtoJSON()}},
	{"connect-proto", func(in *apptest.Instance) *http.Client { return in.HTTP1 }, nil},
	{"grpc", func(in *apptest.Instance) *http.Client { return in.H2C }, []connect.ClientOption{connect.WithGRPC()}},
	{"grpc-web", func(in *apptest.Instance) *http.Client { return in.HTTP1 }, []connect.ClientOption{connect.WithGRPCWeb()}},
	{"grpc-web-json", func(in *apptest.Instance) *http.Client { return in.HTTP1 }, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
}

// clients returns the generated auth and home clients speaking p to in.
func (p protocol) clients(in *apptest.Instance) (authv1connect.AuthServiceClient, homev1connect.HomeServiceClient) {
	return authv1connect.NewAuthServiceClient(p.client(in), in.URL, p.opts...),
		homev1connect.NewHomeServiceClient(p.client(in), in.URL, p.opts...)
}

// dummyToken logs in through DummyLogin over the client's protocol.
func dummyToken(t *testing.T, auth authv1connect.AuthServiceClient, role string) string {
	t.Helper()
	res, err := auth.DummyLogin(context.Background(), connect.NewRequest(&authv1.DummyLoginRequest{UserType: role}))
	if err != nil {
		t.Fatalf("dummy login as %s: %v", role, err)
	}
	return res.Msg.GetToken()
}

func withToken[T any](msg *T, token string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return req
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
}

// TestEveryProtocol runs the whole flow of API.md with the generated client
// over each protocol the port serves.
func TestEveryProtocol(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			auth, home := p.clients(in)
			modTok, cliTok := dummyToken(t, auth, "moderator"), dummyToken(t, auth, "client")
			_, err := auth.DummyLogin(ctx, connect.NewRequest(&authv1.DummyLoginRequest{UserType: "root"}))
			wantCode(t, err, connect.CodeInvalidArgument)

			email := p.name + "@example.com"
			reg, err := auth.Register(ctx, connect.NewRequest(&authv1.RegisterRequest{Email: email, Password: "password1", UserType: "client"}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = auth.Register(ctx, connect.NewRequest(&authv1.RegisterRequest{Email: strings.ToUpper(email), Password: "password1", UserType: "client"}))
			wantCode(t, err, connect.CodeAborted)
			login, err := auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{
				Identity: &authv1.LoginRequest_Id{Id: reg.Msg.GetUserId()}, Password: "password1"}))
			if err != nil || login.Msg.GetExpiresIn() <= 0 {
				t.Fatalf("login: %v %v", login, err)
			}
			refreshed, err := auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: login.Msg.GetRefreshToken()}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := auth.Logout(ctx, connect.NewRequest(&authv1.LogoutRequest{RefreshToken: refreshed.Msg.GetRefreshToken()})); err != nil {
				t.Fatal(err)
			}
			_, err = auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: refreshed.Msg.GetRefreshToken()}))
			wantCode(t, err, connect.CodeUnauthenticated)

			house, err := home.CreateHouse(ctx, withToken(&homev1.CreateHouseRequest{Address: "Lenina 1", Year: 2001}, modTok))
			if err != nil {
				t.Fatal(err)
			}
			hid := house.Msg.GetHouse().GetId()
			_, err = home.CreateHouse(ctx, withToken(&homev1.CreateHouseRequest{Address: "x", Year: 2001}, cliTok))
			wantCode(t, err, connect.CodePermissionDenied)
			_, err = home.CreateHouse(ctx, withToken(&homev1.CreateHouseRequest{Address: "x", Year: 2001}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = home.CreateHouse(ctx, withToken(&homev1.CreateHouseRequest{Address: "", Year: 2001}, modTok))
			wantCode(t, err, connect.CodeInvalidArgument)

			flat, err := home.CreateFlat(ctx, withToken(&homev1.CreateFlatRequest{HouseId: hid, Price: 100, Rooms: 2}, cliTok))
			if err != nil {
				t.Fatal(err)
			}
			if flat.Msg.GetFlat().GetNumber() != 1 || flat.Msg.GetFlat().GetStatus() != "created" {
				t.Fatalf("flat: %v", flat.Msg)
			}
			_, err = home.CreateFlat(ctx, withToken(&homev1.CreateFlatRequest{HouseId: 99999, Price: 1, Rooms: 1}, cliTok))
			wantCode(t, err, connect.CodeNotFound)

			fid := flat.Msg.GetFlat().GetId()
			for _, status := range []string{"on moderation", "approved"} {
				if _, err := home.UpdateFlat(ctx, withToken(&homev1.UpdateFlatRequest{Id: fid, Status: status}, modTok)); err != nil {
					t.Fatalf("%s: %v", status, err)
				}
			}
			_, err = home.UpdateFlat(ctx, withToken(&homev1.UpdateFlatRequest{Id: fid, Status: "declined"}, modTok))
			wantCode(t, err, connect.CodeAborted)

			list, err := home.GetHouseFlats(ctx, withToken(&homev1.GetHouseFlatsRequest{Id: hid}, cliTok))
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Msg.GetFlats()) != 1 || list.Msg.GetFlats()[0].GetStatus() != "approved" {
				t.Fatalf("client list: %v", list.Msg)
			}
			if _, err := home.Subscribe(ctx, withToken(&homev1.SubscribeRequest{Id: hid, Email: email}, cliTok)); err != nil {
				t.Fatal(err)
			}
			_, err = home.Subscribe(ctx, withToken(&homev1.SubscribeRequest{Id: hid, Email: "nope"}, cliTok))
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = home.Subscribe(ctx, withToken(&homev1.SubscribeRequest{Id: 4242, Email: email}, cliTok))
			wantCode(t, err, connect.CodeNotFound)
			_, err = home.GetHouseFlats(ctx, withToken(&homev1.GetHouseFlatsRequest{Id: 4242}, cliTok))
			wantCode(t, err, connect.CodeNotFound)

			// A held flat: on_moderation is the same status, repeating it is
			// a no-op for the holder, another moderator gets a conflict.
			mod2Tok := dummyToken(t, auth, "moderator")
			held, err := home.CreateFlat(ctx, withToken(&homev1.CreateFlatRequest{HouseId: hid, Price: 5, Rooms: 1}, cliTok))
			if err != nil {
				t.Fatal(err)
			}
			hfid := held.Msg.GetFlat().GetId()
			for range 2 {
				got, err := home.UpdateFlat(ctx, withToken(&homev1.UpdateFlatRequest{Id: hfid, Status: "on_moderation"}, modTok))
				if err != nil || got.Msg.GetFlat().GetStatus() != "on moderation" {
					t.Fatalf("take: %v %v", got, err)
				}
			}
			_, err = home.UpdateFlat(ctx, withToken(&homev1.UpdateFlatRequest{Id: hfid, Status: "approved"}, mod2Tok))
			wantCode(t, err, connect.CodeAborted)
			_, err = home.UpdateFlat(ctx, withToken(&homev1.UpdateFlatRequest{Id: hfid, Status: "sold"}, modTok))
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	}
}

// TestBufCurl drives the running server with `buf curl`, which knows nothing
// of our protos but what server reflection tells it.
func TestBufCurl(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	bufCurl := func(args ...string) string {
		t.Helper()
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", append([]string{"tool", "-modfile=tools.mod", "buf", "curl"}, args...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("buf curl %v: %v", args, err)
		}
		return string(out)
	}
	services := bufCurl("--http2-prior-knowledge", "--list-services", in.URL)
	for _, want := range []string{"homes.auth.v1.AuthService", "homes.home.v1.HomeService"} {
		if !strings.Contains(services, want) {
			t.Fatalf("reflection lists %q, missing %s", services, want)
		}
	}
	// The older reflection protocol, which grpcurl and older tools speak.
	alpha := bufCurl("--http2-prior-knowledge", "--reflect-protocol", "grpc-v1alpha", "--list-services", in.URL)
	if !strings.Contains(alpha, "homes.home.v1.HomeService") {
		t.Fatalf("v1alpha reflection lists %q", alpha)
	}
	methods := bufCurl("--http2-prior-knowledge", "--list-methods", in.URL)
	if !strings.Contains(methods, "homes.home.v1.HomeService/UpdateFlat") {
		t.Fatalf("methods: %s", methods)
	}
	for _, proto := range []string{"grpc", "grpcweb", "connect"} {
		out := bufCurl("--http2-prior-knowledge", "--protocol", proto, "-d", `{"user_type":"moderator"}`,
			in.URL+"/homes.auth.v1.AuthService/DummyLogin")
		if !strings.Contains(out, `"token"`) {
			t.Fatalf("%s DummyLogin: %s", proto, out)
		}
	}
	health := bufCurl("--http2-prior-knowledge", "--protocol", "grpc", in.URL+"/grpc.health.v1.Health/Check")
	if !strings.Contains(health, "SERVING") {
		t.Fatalf("health: %s", health)
	}
	denied := bufCurl("--http2-prior-knowledge", "--protocol", "grpc", "-d", `{"id":1}`,
		in.URL+"/homes.home.v1.HomeService/GetHouseFlats")
	if !strings.Contains(denied, "unauthenticated") {
		t.Fatalf("unauthenticated call: %s", denied)
	}
}
