package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg/pgtest"
	"github.com/homeservices/homes/services/auth"
)

const (
	issuer   = "homes-auth"
	audience = "homes"
	password = "correct horse battery"
)

type env struct {
	client   authv1connect.AuthServiceClient
	db       *bun.DB
	verifier *authn.Verifier
}

func newEnv(t *testing.T, cfg auth.Config) env {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t)
	signer := authn.NewSigner(key, issuer, audience, time.Hour)
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.MinCost
	}
	svc := auth.New(cfg, db, signer, nil)
	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env{
		client:   authv1connect.NewAuthServiceClient(srv.Client(), srv.URL),
		db:       db,
		verifier: authn.NewVerifier(issuer, audience, signer.PublicKey()),
	}
}

func (e env) register(t *testing.T, email string, role authn.Role) string {
	t.Helper()
	resp, err := e.client.Register(context.Background(), connect.NewRequest(&authv1.RegisterRequest{
		Email: email, Password: password, UserType: string(role),
	}))
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	if _, err := uuid.Parse(resp.Msg.GetUserId()); err != nil {
		t.Fatalf("user_id %q: %v", resp.Msg.GetUserId(), err)
	}
	return resp.Msg.GetUserId()
}

func (e env) login(t *testing.T, id string) *authv1.LoginResponse {
	t.Helper()
	resp, err := e.client.Login(context.Background(), connect.NewRequest(&authv1.LoginRequest{
		Identity: &authv1.LoginRequest_Id{Id: id}, Password: password,
	}))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return resp.Msg
}

func (e env) refresh(token string) (*authv1.RefreshResponse, error) {
	resp, err := e.client.Refresh(context.Background(), connect.NewRequest(&authv1.RefreshRequest{RefreshToken: token}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (e env) logout(t *testing.T, token string) {
	t.Helper()
	if _, err := e.client.Logout(context.Background(), connect.NewRequest(&authv1.LogoutRequest{RefreshToken: token})); err != nil {
		t.Fatalf("logout: %v", err)
	}
}

// verify checks that tok is an access token of user with role.
func (e env) verify(t *testing.T, tok, user string, role authn.Role) {
	t.Helper()
	id, err := e.verifier.Verify(tok)
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	if id.Role != role || (user != "" && id.UserID != user) {
		t.Fatalf("token identity = %+v, want user %s role %s", id, user, role)
	}
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("error = %v (code %v), want code %v", err, got, code)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	for _, role := range []authn.Role{authn.RoleClient, authn.RoleModerator} {
		t.Run(string(role), func(t *testing.T) {
			email := "Someone." + string(role) + "@Example.com"
			id := e.register(t, email, role)

			byID := e.login(t, id)
			e.verify(t, byID.GetToken(), id, role)
			if byID.GetExpiresIn() != 3600 {
				t.Fatalf("expires_in = %d, want 3600", byID.GetExpiresIn())
			}
			if byID.GetRefreshToken() == "" {
				t.Fatal("no refresh token")
			}

			resp, err := e.client.Login(context.Background(), connect.NewRequest(&authv1.LoginRequest{
				Identity: &authv1.LoginRequest_Email{Email: strings.ToLower(email)}, Password: password,
			}))
			if err != nil {
				t.Fatalf("login by email in another case: %v", err)
			}
			e.verify(t, resp.Msg.GetToken(), id, role)
			if resp.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control = %q, want no-store", resp.Header().Get("Cache-Control"))
			}
			if resp.Msg.GetRefreshToken() == byID.GetRefreshToken() {
				t.Fatal("two logins share a refresh token")
			}
		})
	}
}

func TestPasswordIsHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "hash@example.com", authn.RoleClient)
	var hash string
	if err := e.db.NewSelect().Table("users").Column("password_hash").Where("id = ?", id).Scan(context.Background(), &hash); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Fatalf("stored hash does not match the password: %v", err)
	}
	if cost, _ := bcrypt.Cost([]byte(hash)); cost != bcrypt.MinCost {
		t.Fatalf("bcrypt cost = %d, want the configured %d", cost, bcrypt.MinCost)
	}
}

func TestRegisterDuplicateEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	e.register(t, "dup@example.com", authn.RoleClient)
	_, err := e.client.Register(context.Background(), connect.NewRequest(&authv1.RegisterRequest{
		Email: "DUP@Example.COM", Password: password, UserType: "moderator",
	}))
	wantCode(t, err, connect.CodeAborted) // apperr.Conflict, REST 409
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Message() != "email already registered" {
		t.Fatalf("message = %q", ce.Message())
	}
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "known@example.com", authn.RoleClient)
	tests := []struct {
		name string
		req  *authv1.LoginRequest
		code connect.Code
	}{
		{"wrong password by id", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Id{Id: id}, Password: "wrong password"}, connect.CodeUnauthenticated},
		{"wrong password by email", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Email{Email: "known@example.com"}, Password: "wrong password"}, connect.CodeUnauthenticated},
		{"unknown id", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Id{Id: uuid.NewString()}, Password: password}, connect.CodeNotFound},
		{"unknown email", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Email{Email: "nobody@example.com"}, Password: password}, connect.CodeNotFound},
		{"no identity", &authv1.LoginRequest{Password: password}, connect.CodeInvalidArgument},
		{"id not a uuid", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Id{Id: "42"}, Password: password}, connect.CodeInvalidArgument},
		{"empty email", &authv1.LoginRequest{Identity: &authv1.LoginRequest_Email{}, Password: password}, connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.client.Login(context.Background(), connect.NewRequest(tt.req))
			wantCode(t, err, tt.code)
		})
	}
}

func TestDummyLogin(t *testing.T) {
	t.Parallel()
	on := newEnv(t, auth.Config{DummyLogin: true})
	off := newEnv(t, auth.Config{DummyLogin: false})
	for _, role := range []authn.Role{authn.RoleClient, authn.RoleModerator} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			req := &authv1.DummyLoginRequest{UserType: string(role)}
			a, err := on.client.DummyLogin(context.Background(), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			on.verify(t, a.Msg.GetToken(), "", role)
			b, err := on.client.DummyLogin(context.Background(), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			ida, _ := on.verifier.Verify(a.Msg.GetToken())
			idb, _ := on.verifier.Verify(b.Msg.GetToken())
			if ida.UserID == idb.UserID {
				t.Fatal("two dummy logins share a user id")
			}

			_, err = off.client.DummyLogin(context.Background(), connect.NewRequest(req))
			wantCode(t, err, connect.CodeNotFound)
		})
	}
	t.Run("bad role", func(t *testing.T) {
		t.Parallel()
		_, err := on.client.DummyLogin(context.Background(), connect.NewRequest(&authv1.DummyLoginRequest{UserType: "admin"}))
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "rotate@example.com", authn.RoleModerator)
	cur := e.login(t, id).GetRefreshToken()
	seen := map[string]bool{cur: true}
	for i := range 3 {
		resp, err := e.refresh(cur)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		e.verify(t, resp.GetToken(), id, authn.RoleModerator)
		if resp.GetExpiresIn() != 3600 {
			t.Fatalf("expires_in = %d", resp.GetExpiresIn())
		}
		if seen[resp.GetRefreshToken()] {
			t.Fatal("refresh returned a token seen before")
		}
		seen[resp.GetRefreshToken()] = true
		cur = resp.GetRefreshToken()
	}
	n, err := e.db.NewSelect().Table("refresh_tokens").Where("user_id = ?", id).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("%d refresh tokens stored, want 4", n)
	}
	var families int
	if err := e.db.NewSelect().Table("refresh_tokens").ColumnExpr("count(DISTINCT family_id)").Scan(context.Background(), &families); err != nil {
		t.Fatal(err)
	}
	if families != 1 {
		t.Fatalf("rotation spans %d families, want 1", families)
	}
}

func TestRefreshTokensStoredHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "hashed@example.com", authn.RoleClient)
	secret := e.login(t, id).GetRefreshToken()
	n, err := e.db.NewSelect().Table("refresh_tokens").
		Where("token_hash = ? OR encode(token_hash, 'escape') = ?", []byte(secret), secret).
		Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("refresh token stored in the clear")
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "reuse@example.com", authn.RoleClient)
	first := e.login(t, id).GetRefreshToken()
	other := e.login(t, id).GetRefreshToken() // another device: another family
	second, err := e.refresh(first)
	if err != nil {
		t.Fatal(err)
	}
	third, err := e.refresh(second.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.refresh(first) // replayed by a thief
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = e.refresh(third.GetRefreshToken()) // the newest token of the family is dead too
	wantCode(t, err, connect.CodeUnauthenticated)

	var live int
	if err := e.db.NewSelect().Table("refresh_tokens").ColumnExpr("count(*)").
		Where("revoked_at IS NULL").Scan(context.Background(), &live); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("%d unrevoked tokens, want 1 (the other family)", live)
	}
	if _, err := e.refresh(other); err != nil {
		t.Fatalf("the other family was revoked too: %v", err)
	}
}

func TestRefreshInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "invalid@example.com", authn.RoleClient)
	expired := e.login(t, id).GetRefreshToken()
	res, err := e.db.NewUpdate().Table("refresh_tokens").
		Set("expires_at = now() - interval '1 second'").
		Where("token_hash = sha256(convert_to(?, 'UTF8'))", expired).
		Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("expired %d tokens, want 1", n)
	}
	tests := []struct {
		name, token string
	}{
		{"unknown", "bm90IGEgcmVhbCB0b2tlbg"},
		{"expired", expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.refresh(tt.token)
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "logout@example.com", authn.RoleClient)

	t.Run("revokes the family", func(t *testing.T) {
		t.Parallel()
		first := e.login(t, id).GetRefreshToken()
		next, err := e.refresh(first)
		if err != nil {
			t.Fatal(err)
		}
		e.logout(t, next.GetRefreshToken())
		_, err = e.refresh(next.GetRefreshToken())
		wantCode(t, err, connect.CodeUnauthenticated)
		e.logout(t, next.GetRefreshToken()) // idempotent
	})
	t.Run("with an older token of the family", func(t *testing.T) {
		t.Parallel()
		first := e.login(t, id).GetRefreshToken()
		next, err := e.refresh(first)
		if err != nil {
			t.Fatal(err)
		}
		e.logout(t, first)
		_, err = e.refresh(next.GetRefreshToken())
		wantCode(t, err, connect.CodeUnauthenticated)
	})
	t.Run("unknown token is a no-op", func(t *testing.T) {
		t.Parallel()
		keep := e.login(t, id).GetRefreshToken()
		e.logout(t, "bm90IGEgcmVhbCB0b2tlbg")
		if _, err := e.refresh(keep); err != nil {
			t.Fatalf("unrelated token revoked: %v", err)
		}
	})
}

func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Config{})
	id := e.register(t, "race@example.com", authn.RoleClient)
	token := e.login(t, id).GetRefreshToken()

	const n = 10
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.refresh(token)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case connect.CodeOf(err) != connect.CodeUnauthenticated:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent refreshes succeeded, want exactly 1", ok)
	}
	var successors int
	if err := e.db.NewSelect().Table("refresh_tokens").ColumnExpr("count(*)").
		Where("user_id = ?", id).Scan(context.Background(), &successors); err != nil {
		t.Fatal(err)
	}
	if successors != 2 {
		t.Fatalf("%d tokens stored, want 2 (the original and one successor)", successors)
	}
}
