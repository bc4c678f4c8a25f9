package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

// User is a registered user. Dummy-login users are never stored.
type User struct {
	ID           uuid.UUID
	Email        string
	PasswordHash []byte // bcrypt
	Role         authn.Role
	CreatedAt    time.Time
}

// Errors of the user domain, with client-safe messages.
var (
	errEmailTaken     = apperr.E(apperr.Conflict, "email already registered")
	errUserNotFound   = apperr.E(apperr.NotFound, "user not found")
	errWrongPassword  = apperr.E(apperr.Unauthenticated, "wrong password")
	errDummyLoginOff  = apperr.E(apperr.NotFound, "not found")
	errLoginIdentity  = apperr.E(apperr.Invalid, "id or email is required")
	errPasswordTooBig = apperr.E(apperr.Invalid, "password must be at most 72 bytes")
)

// userKey names the user of a login: by ID when set, else by Email.
type userKey struct {
	ID    uuid.UUID
	Email string
}

// dummyLogin issues an access token for a fresh user id with role; such
// users exist only inside their token.
func (s *Service) dummyLogin(role authn.Role) (string, error) {
	if !s.cfg.DummyLogin {
		return "", errDummyLoginOff
	}
	tok, err := s.signer.Sign(authn.Identity{UserID: uuid.NewString(), Role: role})
	if err != nil {
		return "", fmt.Errorf("dummy login: %w", err)
	}
	return tok, nil
}

// register creates a user and returns its id.
func (s *Service) register(ctx context.Context, email, password string, role authn.Role) (uuid.UUID, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return uuid.Nil, errPasswordTooBig
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("hash password: %w", err)
	}
	u := User{
		ID:           uuid.New(),
		Email:        email,
		PasswordHash: hash,
		Role:         role,
		CreatedAt:    time.Now().UTC(),
	}
	if err := s.store.createUser(ctx, u); err != nil {
		return uuid.Nil, err
	}
	return u.ID, nil
}

// login checks the password of the user named by key and starts a new
// refresh token family. API.md wants an unknown user to be 404, so the
// existence of an account is not hidden.
func (s *Service) login(ctx context.Context, key userKey, password string) (TokenPair, error) {
	var (
		u   User
		err error
	)
	switch {
	case key.ID != uuid.Nil:
		u, err = s.store.userByID(ctx, key.ID)
	case key.Email != "":
		u, err = s.store.userByEmail(ctx, key.Email)
	default:
		return TokenPair{}, errLoginIdentity
	}
	if err != nil {
		return TokenPair{}, err
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)); err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return TokenPair{}, errWrongPassword
		}
		return TokenPair{}, fmt.Errorf("compare password: %w", err)
	}
	return s.startFamily(ctx, u)
}
