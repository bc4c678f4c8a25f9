package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/authn"
)

// uniqueViolation is the PostgreSQL SQLSTATE of a unique constraint failure.
const uniqueViolation = "23505"

// userRow is a row of users.
type userRow struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID           uuid.UUID `bun:"id,pk,type:uuid"`
	Email        string    `bun:"email"`
	PasswordHash string    `bun:"password_hash"`
	Role         string    `bun:"role"`
	CreatedAt    time.Time `bun:"created_at"`
}

func (r userRow) user() User {
	return User{
		ID:           r.ID,
		Email:        r.Email,
		PasswordHash: []byte(r.PasswordHash),
		Role:         authn.Role(r.Role),
		CreatedAt:    r.CreatedAt,
	}
}

// refreshTokenRow is a row of refresh_tokens.
type refreshTokenRow struct {
	bun.BaseModel `bun:"table:refresh_tokens,alias:rt"`

	ID        uuid.UUID  `bun:"id,pk,type:uuid"`
	FamilyID  uuid.UUID  `bun:"family_id,type:uuid"`
	UserID    uuid.UUID  `bun:"user_id,type:uuid"`
	TokenHash []byte     `bun:"token_hash"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
	RevokedAt *time.Time `bun:"revoked_at"`
	CreatedAt time.Time  `bun:"created_at"`
}

func (r refreshTokenRow) token() refreshToken {
	return refreshToken{
		ID:        r.ID,
		FamilyID:  r.FamilyID,
		UserID:    r.UserID,
		Hash:      r.TokenHash,
		ExpiresAt: r.ExpiresAt,
		UsedAt:    r.UsedAt,
		RevokedAt: r.RevokedAt,
		CreatedAt: r.CreatedAt,
	}
}

func tokenRow(t refreshToken) *refreshTokenRow {
	return &refreshTokenRow{
		ID:        t.ID,
		FamilyID:  t.FamilyID,
		UserID:    t.UserID,
		TokenHash: t.Hash,
		ExpiresAt: t.ExpiresAt,
		CreatedAt: t.CreatedAt,
	}
}

// store keeps users and refresh tokens in PostgreSQL.
type store struct {
	db *bun.DB
}

// createUser inserts u; an email taken in any letter case is errEmailTaken.
func (st *store) createUser(ctx context.Context, u User) error {
	row := &userRow{
		ID:           u.ID,
		Email:        u.Email,
		PasswordHash: string(u.PasswordHash),
		Role:         string(u.Role),
		CreatedAt:    u.CreatedAt,
	}
	if _, err := st.db.NewInsert().Model(row).Exec(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
			return errEmailTaken
		}
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// userByID returns the user with id, or errUserNotFound.
func (st *store) userByID(ctx context.Context, id uuid.UUID) (User, error) {
	return st.userWhere(ctx, st.db, "u.id = ?", id)
}

// userByEmail returns the user with email in any letter case (citext), or
// errUserNotFound.
func (st *store) userByEmail(ctx context.Context, email string) (User, error) {
	return st.userWhere(ctx, st.db, "u.email = ?", email)
}

func (st *store) userWhere(ctx context.Context, db bun.IDB, where string, arg any) (User, error) {
	var row userRow
	err := db.NewSelect().Model(&row).Where(where, arg).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errUserNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("select user: %w", err)
	}
	return row.user(), nil
}

// insertRefreshToken stores t, the first token of a family.
func (st *store) insertRefreshToken(ctx context.Context, t refreshToken) error {
	if _, err := st.db.NewInsert().Model(tokenRow(t)).Exec(ctx); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// rotateRefreshToken locks the token stored under hash and asks next, with
// the token and its user, for its successor — all in one transaction, so of
// concurrent rotations of one token exactly one sees it unused. On success
// the token is marked used at now and the successor is stored. An unknown
// token is errInvalidRefresh. When next reports errRefreshReused, the
// token's family is revoked and that revocation is committed before the
// error is returned; any other error of next rolls back.
func (st *store) rotateRefreshToken(ctx context.Context, hash []byte, now time.Time,
	next func(cur refreshToken, u User) (refreshToken, error),
) error {
	reused := false
	err := st.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var row refreshTokenRow
		err := tx.NewSelect().Model(&row).Where("rt.token_hash = ?", hash).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return errInvalidRefresh
		}
		if err != nil {
			return fmt.Errorf("lock refresh token: %w", err)
		}
		u, err := st.userWhere(ctx, tx, "u.id = ?", row.UserID)
		if err != nil {
			return err
		}
		succ, err := next(row.token(), u)
		if errors.Is(err, errRefreshReused) {
			reused = true
			return revokeFamily(ctx, tx, row.FamilyID, now)
		}
		if err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model((*refreshTokenRow)(nil)).
			Set("used_at = ?", now).
			Where("rt.id = ?", row.ID).
			Exec(ctx); err != nil {
			return fmt.Errorf("mark refresh token used: %w", err)
		}
		if _, err := tx.NewInsert().Model(tokenRow(succ)).Exec(ctx); err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if reused {
		return errRefreshReused
	}
	return nil
}

// revokeFamilyOf revokes every token of the family of the token stored under
// hash; an unknown hash changes nothing.
func (st *store) revokeFamilyOf(ctx context.Context, hash []byte, now time.Time) error {
	family := st.db.NewSelect().Model((*refreshTokenRow)(nil)).
		Column("family_id").
		Where("token_hash = ?", hash)
	if _, err := st.db.NewUpdate().Model((*refreshTokenRow)(nil)).
		Set("revoked_at = ?", now).
		Where("rt.revoked_at IS NULL").
		Where("rt.family_id IN (?)", family).
		Exec(ctx); err != nil {
		return fmt.Errorf("revoke refresh token family: %w", err)
	}
	return nil
}

func revokeFamily(ctx context.Context, db bun.IDB, family uuid.UUID, now time.Time) error {
	if _, err := db.NewUpdate().Model((*refreshTokenRow)(nil)).
		Set("revoked_at = ?", now).
		Where("rt.family_id = ?", family).
		Where("rt.revoked_at IS NULL").
		Exec(ctx); err != nil {
		return fmt.Errorf("revoke refresh token family: %w", err)
	}
	return nil
}
