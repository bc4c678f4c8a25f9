package authn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

// echoHandler answers DummyLogin with the caller's identity, "user/role", or
// "anonymous"; Register requires a moderator.
type echoHandler struct {
	authv1connect.UnimplementedAuthServiceHandler
}

func (echoHandler) DummyLogin(ctx context.Context, _ *connect.Request[authv1.DummyLoginRequest]) (*connect.Response[authv1.DummyLoginResponse], error) {
	id, ok := authn.FromContext(ctx)
	out := "anonymous"
	if ok {
		out = id.UserID + "/" + string(id.Role)
	}
	return connect.NewResponse(&authv1.DummyLoginResponse{Token: out}), nil
}

func (echoHandler) Register(ctx context.Context, _ *connect.Request[authv1.RegisterRequest]) (*connect.Response[authv1.RegisterResponse], error) {
	id, err := authn.Require(ctx, authn.RoleModerator)
	if err != nil {
		return nil, apperr.ToConnect(ctx, nil, err)
	}
	return connect.NewResponse(&authv1.RegisterResponse{UserId: id.UserID}), nil
}

func TestInterceptor(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	s := authn.NewSigner(key, testIssuer, testAudience, time.Hour)
	v := authn.NewVerifier(testIssuer, testAudience, pub(key))
	mux := http.NewServeMux()
	mux.Handle(authv1connect.NewAuthServiceHandler(echoHandler{}, connect.WithInterceptors(authn.NewInterceptor(v))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The interceptor on the client side must be a no-op.
	client := authv1connect.NewAuthServiceClient(srv.Client(), srv.URL, connect.WithInterceptors(authn.NewInterceptor(v)))

	client1 := uuid.NewString()
	mod := uuid.NewString()
	clientTok, err := s.Sign(authn.Identity{UserID: client1, Role: authn.RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	modTok, err := s.Sign(authn.Identity{UserID: mod, Role: authn.RoleModerator})
	if err != nil {
		t.Fatal(err)
	}
	expired := sign(t, authn.NewSigner(key, testIssuer, testAudience, -time.Hour))
	foreign := sign(t, authn.NewSigner(newKey(t), testIssuer, testAudience, time.Hour))

	tests := []struct {
		name     string
		auth     string // Authorization header; empty means none
		want     string // DummyLogin answer
		wantCode connect.Code
	}{
		{"no header", "", "anonymous", 0},
		{"client token", "Bearer " + clientTok, client1 + "/client", 0},
		{"moderator token", "Bearer " + modTok, mod + "/moderator", 0},
		{"lowercase scheme", "bearer " + clientTok, client1 + "/client", 0},
		{"expired token", "Bearer " + expired, "", connect.CodeUnauthenticated},
		{"foreign key", "Bearer " + foreign, "", connect.CodeUnauthenticated},
		{"garbage token", "Bearer garbage", "", connect.CodeUnauthenticated},
		{"empty bearer", "Bearer ", "", connect.CodeUnauthenticated},
		{"basic scheme", "Basic dXNlcjpwYXNz", "", connect.CodeUnauthenticated},
		{"bare token", clientTok, "", connect.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := connect.NewRequest(&authv1.DummyLoginRequest{UserType: "client"})
			if tt.auth != "" {
				req.Header().Set("Authorization", tt.auth)
			}
			resp, err := client.DummyLogin(context.Background(), req)
			if tt.wantCode != 0 {
				if connect.CodeOf(err) != tt.wantCode {
					t.Fatalf("code = %v (%v), want %v", connect.CodeOf(err), err, tt.wantCode)
				}
				var ce *connect.Error
				if errors.As(err, &ce) && ce.Message() != "invalid token" {
					t.Fatalf("message = %q leaks details", ce.Message())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg.GetToken() != tt.want {
				t.Fatalf("identity = %q, want %q", resp.Msg.GetToken(), tt.want)
			}
		})
	}

	// Require turns a missing identity into 401 and a wrong role into 403.
	roleTests := []struct {
		name     string
		auth     string
		wantCode connect.Code
	}{
		{"anonymous", "", connect.CodeUnauthenticated},
		{"client", "Bearer " + clientTok, connect.CodePermissionDenied},
		{"moderator", "Bearer " + modTok, 0},
	}
	for _, tt := range roleTests {
		t.Run("require/"+tt.name, func(t *testing.T) {
			t.Parallel()
			req := connect.NewRequest(&authv1.RegisterRequest{})
			if tt.auth != "" {
				req.Header().Set("Authorization", tt.auth)
			}
			_, err := client.Register(context.Background(), req)
			if got := connect.CodeOf(err); err != nil && got != tt.wantCode || err == nil && tt.wantCode != 0 {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
		})
	}
}

func TestInterceptorStreaming(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	v := authn.NewVerifier(testIssuer, testAudience, pub(key))
	const path = "/homes.test.v1.Echo/Stream"
	h := connect.NewServerStreamHandler(path,
		func(ctx context.Context, _ *connect.Request[authv1.DummyLoginRequest], stream *connect.ServerStream[authv1.DummyLoginResponse]) error {
			out := "anonymous"
			if id, ok := authn.FromContext(ctx); ok {
				out = string(id.Role)
			}
			return stream.Send(&authv1.DummyLoginResponse{Token: out})
		},
		connect.WithInterceptors(authn.NewInterceptor(v)),
	)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := connect.NewClient[authv1.DummyLoginRequest, authv1.DummyLoginResponse](srv.Client(), srv.URL+path)

	call := func(auth string) (string, error) {
		req := connect.NewRequest(&authv1.DummyLoginRequest{})
		if auth != "" {
			req.Header().Set("Authorization", auth)
		}
		stream, err := client.CallServerStream(context.Background(), req)
		if err != nil {
			return "", err
		}
		defer func() { _ = stream.Close() }()
		var got string
		for stream.Receive() {
			got = stream.Msg().GetToken()
		}
		return got, stream.Err()
	}
	tok := sign(t, authn.NewSigner(key, testIssuer, testAudience, time.Hour))
	if got, err := call("Bearer " + tok); err != nil || got != "client" {
		t.Fatalf("valid token: %q, %v", got, err)
	}
	if got, err := call(""); err != nil || got != "anonymous" {
		t.Fatalf("no token: %q, %v", got, err)
	}
	if _, err := call("Bearer nope"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("bad token: %v", err)
	}
}

// TestRequiredInterceptorPolicy: under a policy the interceptor refuses a
// missing token (401), the wrong role (403) and a procedure the policy does
// not list (403, to everybody), before the handler runs.
func TestRequiredInterceptorPolicy(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	s := authn.NewSigner(key, testIssuer, testAudience, time.Hour)
	v := authn.NewVerifier(testIssuer, testAudience, pub(key))
	policy := authn.Policy{authv1connect.AuthServiceDummyLoginProcedure: {authn.RoleModerator}}
	mux := http.NewServeMux()
	mux.Handle(authv1connect.NewAuthServiceHandler(echoHandler{}, connect.WithInterceptors(authn.NewRequiredInterceptor(v, policy))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := authv1connect.NewAuthServiceClient(srv.Client(), srv.URL)
	tokenOf := func(role authn.Role) string {
		tok, err := s.Sign(authn.Identity{UserID: uuid.NewString(), Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	call := func(tok string, unlisted bool) error {
		var err error
		if unlisted {
			req := connect.NewRequest(&authv1.RegisterRequest{})
			req.Header().Set("Authorization", "Bearer "+tok)
			_, err = client.Register(context.Background(), req)
		} else {
			req := connect.NewRequest(&authv1.DummyLoginRequest{})
			if tok != "" {
				req.Header().Set("Authorization", "Bearer "+tok)
			}
			_, err = client.DummyLogin(context.Background(), req)
		}
		return err
	}
	tests := []struct {
		name     string
		err      error
		wantCode connect.Code
	}{
		{"moderator, listed", call(tokenOf(authn.RoleModerator), false), 0},
		{"no token", call("", false), connect.CodeUnauthenticated},
		{"client, listed for moderators", call(tokenOf(authn.RoleClient), false), connect.CodePermissionDenied},
		{"moderator, unlisted procedure", call(tokenOf(authn.RoleModerator), true), connect.CodePermissionDenied},
	}
	for _, tc := range tests {
		if got := connect.CodeOf(tc.err); tc.err != nil && got != tc.wantCode || tc.err == nil && tc.wantCode != 0 {
			t.Errorf("%s: err %v, want code %v", tc.name, tc.err, tc.wantCode)
		}
	}
}
