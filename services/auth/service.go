// Package auth is the auth service: it registers users, checks passwords and
// issues the access tokens (JWT, verified locally by every service through
// pkg/authn) and the rotating refresh tokens.
package auth

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"

	authv1 "github.com/homeservices/homes/gen/homes/auth/v1"
	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

// DefaultRefreshTTL is the refresh token lifetime when Config leaves it zero.
const DefaultRefreshTTL = 30 * 24 * time.Hour

// Config configures the auth service.
type Config struct {
	// DummyLogin enables DummyLogin (GET /dummyLogin), which hands out a
	// token of any role to anyone: for development and tests only. When
	// false the RPC answers NotFound, as if it did not exist.
	DummyLogin bool
	// BcryptCost is the bcrypt work factor of password hashes; 0 means
	// bcrypt.DefaultCost. Tests use bcrypt.MinCost to run fast.
	BcryptCost int
	// RefreshTTL is how long a refresh token may be used; 0 means
	// DefaultRefreshTTL. Each rotation issues a token with a fresh TTL.
	RefreshTTL time.Duration
}

// Service implements authv1connect.AuthServiceHandler.
type Service struct {
	cfg    Config
	store  *store
	signer *authn.Signer
	log    *slog.Logger
}

var _ authv1connect.AuthServiceHandler = (*Service)(nil)

// New returns the auth service storing users in db and signing access tokens
// with signer. A nil log means slog.Default().
func New(cfg Config, db *bun.DB, signer *authn.Signer, log *slog.Logger) *Service {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, store: &store{db: db}, signer: signer, log: log}
}

// Handler returns the path and the Connect handler of the service, for a mux.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return authv1connect.NewAuthServiceHandler(s, opts...)
}

// Interceptor answers DummyLogin with 404 when it is switched off, before
// request validation sees the call: a switched-off endpoint looks absent
// whatever its input. Put it before the validation interceptor.
func (s *Service) Interceptor() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if !s.cfg.DummyLogin && !req.Spec().IsClient && req.Spec().Procedure == authv1connect.AuthServiceDummyLoginProcedure {
				return nil, s.fail(ctx, errDummyLoginOff)
			}
			return next(ctx, req)
		}
	})
}

// DummyLogin implements authv1connect.AuthServiceHandler.
func (s *Service) DummyLogin(ctx context.Context, req *connect.Request[authv1.DummyLoginRequest]) (*connect.Response[authv1.DummyLoginResponse], error) {
	role, ok := authn.ParseRole(req.Msg.GetUserType())
	if !ok {
		return nil, s.fail(ctx, apperr.E(apperr.Invalid, "user_type must be client or moderator"))
	}
	tok, err := s.dummyLogin(role)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return noStore(connect.NewResponse(&authv1.DummyLoginResponse{Token: tok})), nil
}

// Register implements authv1connect.AuthServiceHandler.
func (s *Service) Register(ctx context.Context, req *connect.Request[authv1.RegisterRequest]) (*connect.Response[authv1.RegisterResponse], error) {
	role, ok := authn.ParseRole(req.Msg.GetUserType())
	if !ok {
		return nil, s.fail(ctx, apperr.E(apperr.Invalid, "user_type must be client or moderator"))
	}
	id, err := s.register(ctx, req.Msg.GetEmail(), req.Msg.GetPassword(), role)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&authv1.RegisterResponse{UserId: id.String()}), nil
}

// Login implements authv1connect.AuthServiceHandler.
func (s *Service) Login(ctx context.Context, req *connect.Request[authv1.LoginRequest]) (*connect.Response[authv1.LoginResponse], error) {
	var key userKey
	switch v := req.Msg.GetIdentity().(type) {
	case *authv1.LoginRequest_Id:
		id, err := uuid.Parse(v.Id)
		if err != nil {
			return nil, s.fail(ctx, apperr.E(apperr.Invalid, "id must be a uuid"))
		}
		key.ID = id
	case *authv1.LoginRequest_Email:
		key.Email = v.Email
	}
	if key.ID == uuid.Nil && key.Email == "" {
		return nil, s.fail(ctx, errLoginIdentity)
	}
	pair, err := s.login(ctx, key, req.Msg.GetPassword())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return noStore(connect.NewResponse(&authv1.LoginResponse{
		Token:        pair.Access,
		RefreshToken: pair.Refresh,
		ExpiresIn:    seconds(pair.ExpiresIn),
	})), nil
}

// Refresh implements authv1connect.AuthServiceHandler.
func (s *Service) Refresh(ctx context.Context, req *connect.Request[authv1.RefreshRequest]) (*connect.Response[authv1.RefreshResponse], error) {
	pair, err := s.refresh(ctx, req.Msg.GetRefreshToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return noStore(connect.NewResponse(&authv1.RefreshResponse{
		Token:        pair.Access,
		RefreshToken: pair.Refresh,
		ExpiresIn:    seconds(pair.ExpiresIn),
	})), nil
}

// Logout implements authv1connect.AuthServiceHandler. An unknown token is a
// successful no-op (see logout).
func (s *Service) Logout(ctx context.Context, req *connect.Request[authv1.LogoutRequest]) (*connect.Response[authv1.LogoutResponse], error) {
	if err := s.logout(ctx, req.Msg.GetRefreshToken()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&authv1.LogoutResponse{}), nil
}

func (s *Service) fail(ctx context.Context, err error) error {
	return apperr.ToConnect(ctx, s.log, err)
}

// noStore keeps tokens out of caches (RFC 6749 section 5.1).
func noStore[T any](resp *connect.Response[T]) *connect.Response[T] {
	resp.Header().Set("Cache-Control", "no-store")
	return resp
}

// seconds is d in whole seconds, capped to fit the int32 of the proto.
func seconds(d time.Duration) int32 {
	s := d / time.Second
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(s)
}
