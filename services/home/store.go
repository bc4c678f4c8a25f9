package home

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/apperr"
)

// pgForeignKeyViolation is SQLSTATE foreign_key_violation.
const pgForeignKeyViolation = "23503"

type houseRow struct {
	bun.BaseModel `bun:"table:houses,alias:h"`

	ID         int32     `bun:"id,pk,autoincrement"`
	Address    string    `bun:"address"`
	Year       int32     `bun:"year"`
	Developer  *string   `bun:"developer"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdateAt   time.Time `bun:"update_at"`
	FlatsCount int32     `bun:"flats_count"`
}

type flatRow struct {
	bun.BaseModel `bun:"table:flats,alias:f"`

	ID          int32         `bun:"id,pk,autoincrement"`
	HouseID     int32         `bun:"house_id"`
	Number      int32         `bun:"number"`
	Price       int32         `bun:"price"`
	Rooms       int32         `bun:"rooms"`
	Status      string        `bun:"status"`
	ModeratorID uuid.NullUUID `bun:"moderator_id"`
	CreatedAt   time.Time     `bun:"created_at"`
	UpdatedAt   time.Time     `bun:"updated_at"`
	// HouseAddress is read with the flat for the events.
	HouseAddress string `bun:"house_address,scanonly"`
}

type subscriptionRow struct {
	bun.BaseModel `bun:"table:subscriptions"`

	HouseID int32  `bun:"house_id"`
	Email   string `bun:"email"`
}

func (r *flatRow) flat() *Flat {
	return &Flat{
		ID: r.ID, HouseID: r.HouseID, Number: r.Number, Price: r.Price, Rooms: r.Rooms,
		Status: Status(r.Status), Moderator: r.ModeratorID.UUID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// store keeps houses, flats and subscriptions in PostgreSQL. Every change of
// a flat runs hook in its own transaction.
type store struct {
	db   *bun.DB
	hook FlatChangeHook
}

func (s *store) createHouse(ctx context.Context, h *House) error {
	row := &houseRow{Address: h.Address, Year: h.Year, Developer: h.Developer}
	_, err := s.db.NewInsert().Model(row).
		Column("address", "year", "developer").
		Returning("id, created_at, update_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert house: %w", err)
	}
	h.ID, h.CreatedAt, h.UpdateAt = row.ID, row.CreatedAt, row.UpdateAt
	return nil
}

// houseFlats lists the flats of a house ordered by id, only the approved ones
// when approvedOnly. The columns read are those the covering indexes hold.
func (s *store) houseFlats(ctx context.Context, houseID int32, approvedOnly bool) ([]*Flat, error) {
	exists, err := s.db.NewSelect().Model((*houseRow)(nil)).Where("id = ?", houseID).Exists(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up house: %w", err)
	}
	if !exists {
		return nil, houseNotFound(houseID)
	}
	var rows []flatRow
	if err := flatsQuery(s.db, &rows, houseID, approvedOnly).Scan(ctx); err != nil {
		return nil, fmt.Errorf("select flats: %w", err)
	}
	flats := make([]*Flat, 0, len(rows))
	for i := range rows {
		flats = append(flats, rows[i].flat())
	}
	return flats, nil
}

// flatsQuery lists a house's flats into rows; it reads only the columns
// flats_house_id_id_idx and flats_house_id_id_approved_idx cover.
func flatsQuery(db bun.IDB, rows *[]flatRow, houseID int32, approvedOnly bool) *bun.SelectQuery {
	q := db.NewSelect().Model(rows).
		Column("id", "house_id", "number", "price", "rooms", "status").
		Where("house_id = ?", houseID).
		OrderExpr("id")
	if approvedOnly {
		q = q.Where("status = ?", string(StatusApproved))
	}
	return q
}

// subscribe stores the subscription; an existing one is left as it is.
func (s *store) subscribe(ctx context.Context, houseID int32, email string) error {
	_, err := s.db.NewInsert().Model(&subscriptionRow{HouseID: houseID, Email: email}).
		Column("house_id", "email").
		On("CONFLICT DO NOTHING").
		Exec(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgForeignKeyViolation {
		return houseNotFound(houseID)
	}
	if err != nil {
		return fmt.Errorf("insert subscription: %w", err)
	}
	return nil
}

// createFlat gives f the next number of its house, moves the house's
// update_at, inserts f and runs the hook, all in one transaction. The house
// row lock taken by the counter update serialises creations per house.
func (s *store) createFlat(ctx context.Context, f *Flat, actor string) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var house houseRow
		err := tx.NewUpdate().Model(&house).
			Set("flats_count = flats_count + 1").
			Set("update_at = now()").
			Where("id = ?", f.HouseID).
			Returning("flats_count, address").
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return houseNotFound(f.HouseID)
		}
		if err != nil {
			return fmt.Errorf("bump flat number: %w", err)
		}
		row := &flatRow{HouseID: f.HouseID, Number: house.FlatsCount, Price: f.Price, Rooms: f.Rooms, Status: string(f.Status)}
		_, err = tx.NewInsert().Model(row).
			Column("house_id", "number", "price", "rooms", "status").
			Returning("id, created_at, updated_at").
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert flat: %w", err)
		}
		f.ID, f.Number, f.CreatedAt, f.UpdatedAt = row.ID, row.Number, row.CreatedAt, row.UpdatedAt
		if err := s.hook(ctx, tx, flatEvent(f, "", house.Address, actor)); err != nil {
			return fmt.Errorf("run flat change hook: %w", err)
		}
		return nil
	})
}

// updateFlat locks the flat, lets change decide (it holds the rules, the
// store none), and when the status or holder changed writes the flat and runs
// the hook — one transaction. An unchanged flat is returned as it is, with no
// write and no event.
func (s *store) updateFlat(ctx context.Context, id int32, actor string, change func(f *Flat) error) (*Flat, error) {
	var out *Flat
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var row flatRow
		err := tx.NewSelect().Model(&row).
			ColumnExpr("f.*").
			ColumnExpr("h.address AS house_address").
			Join("JOIN houses AS h ON h.id = f.house_id").
			Where("f.id = ?", id).
			For("UPDATE OF f").
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.E(apperr.NotFound, "flat %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("lock flat: %w", err)
		}
		f := row.flat()
		before := *f
		if err := change(f); err != nil {
			return err
		}
		out = f
		if f.Status == before.Status && f.Moderator == before.Moderator {
			out = &before
			return nil
		}
		moderator := uuid.NullUUID{UUID: f.Moderator, Valid: f.Moderator != uuid.Nil}
		err = tx.NewUpdate().Model((*flatRow)(nil)).
			Set("status = ?", string(f.Status)).
			Set("moderator_id = ?", moderator).
			Set("updated_at = now()").
			Where("id = ?", id).
			Returning("updated_at").
			Scan(ctx, &f.UpdatedAt)
		if err != nil {
			return fmt.Errorf("update flat: %w", err)
		}
		if err := s.hook(ctx, tx, flatEvent(f, before.Status, row.HouseAddress, actor)); err != nil {
			return fmt.Errorf("run flat change hook: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func houseNotFound(id int32) error {
	return apperr.E(apperr.NotFound, "house %d not found", id)
}
