package home

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
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
// a flat runs hook in its own transaction and bumps its house's version
// there.
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

// The listing of a house's flats, the hot path, in one round trip: the
// house's version, and its flats ordered by id unless the version is $2
// (the version the caller already holds). The flats come from an index-only
// scan of that house's range in flats_house_id_id_approved_idx (clients) or
// flats_house_id_id_idx (moderators); a house without flats, or one whose
// version is $2, gives one row with NULL flat columns, a missing house none.
// The text is constant, so each connection prepares it once and reuses the
// plan.
const (
	listingSQL = `SELECT h.version, f.id, f.number, f.price, f.rooms, f.status
FROM houses h LEFT JOIN LATERAL (
    SELECT id, number, price, rooms, status FROM flats
    WHERE house_id = h.id AND h.version <> $2 ORDER BY id) f ON true
WHERE h.id = $1`
	approvedListingSQL = `SELECT h.version, f.id, f.number, f.price, f.rooms, f.status
FROM houses h LEFT JOIN LATERAL (
    SELECT id, number, price, rooms, status FROM flats
    WHERE house_id = h.id AND status = 'approved' AND h.version <> $2 ORDER BY id) f ON true
WHERE h.id = $1`
)

// houseFlats lists the flats of a house ordered by id, only the approved
// ones when approvedOnly, with the house's version. When the version is
// known (the caller holds that listing) it returns known true and no flats.
// It runs on the pgx connection under database/sql, not through bun, which
// would inline the arguments and so make every house's query a new
// statement to parse, plan and cache; and it decodes the rows' raw values
// itself, since database/sql's reflective Scan into Null types was a tenth
// of the server's CPU on a listing (docs/scaling.md).
func (s *store) houseFlats(ctx context.Context, houseID int32, approvedOnly bool, known int64) (flats []*Flat, version int64, unchanged bool, err error) {
	q := listingSQL
	if approvedOnly {
		q = approvedListingSQL
	}
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return nil, 0, false, fmt.Errorf("select flats: %w", err)
	}
	defer func() { _ = conn.Close() }()
	found := false
	err = conn.Raw(func(driverConn any) error {
		pc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", driverConn)
		}
		// One constant text: prepared once per connection, its plan reused.
		rows, err := pc.Conn().Query(ctx, q, pgx.QueryExecModeCacheStatement, houseID, known)
		if err != nil {
			return err
		}
		defer rows.Close()
		formats := rowFormats(rows.FieldDescriptions())
		var block []Flat // one allocation for many flats
		for rows.Next() {
			vals := rows.RawValues()
			if len(vals) != 6 {
				return fmt.Errorf("listing row has %d columns, want 6", len(vals))
			}
			found = true
			if version, err = rawInt(vals[0], formats[0]); err != nil {
				return err
			}
			if vals[1] == nil { // no flats (or the version is known)
				continue
			}
			var n [4]int64
			for i := range n {
				if n[i], err = rawInt(vals[i+1], formats[i+1]); err != nil {
					return err
				}
			}
			if len(block) == cap(block) {
				block = make([]Flat, 0, min(max(2*cap(block), 16), 1024))
			}
			block = append(block, Flat{ID: int32(n[0]), HouseID: houseID, Number: int32(n[1]),
				Price: int32(n[2]), Rooms: int32(n[3]), Status: rawStatus(vals[5])})
			flats = append(flats, &block[len(block)-1])
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("select flats: %w", err)
	}
	if !found {
		return nil, 0, false, houseNotFound(houseID)
	}
	// The plan emits the index's order (TestListingUsesHouseIndexes); the
	// check costs one pass and keeps the contract's order whatever the plan.
	if !slices.IsSortedFunc(flats, byID) {
		slices.SortFunc(flats, byID)
	}
	return flats, version, version == known, nil
}

func rowFormats(fds []pgconn.FieldDescription) []int16 {
	out := make([]int16, len(fds))
	for i, fd := range fds {
		out[i] = fd.Format
	}
	return out
}

// rawInt decodes an integer column in either wire format (binary for a
// prepared statement, text otherwise).
func rawInt(b []byte, format int16) (int64, error) {
	if format == pgx.BinaryFormatCode {
		switch len(b) {
		case 2:
			return int64(int16(binary.BigEndian.Uint16(b))), nil
		case 4:
			return int64(int32(binary.BigEndian.Uint32(b))), nil
		case 8:
			return int64(binary.BigEndian.Uint64(b)), nil
		}
		return 0, fmt.Errorf("integer column of %d bytes", len(b))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("integer column: %w", err)
	}
	return n, nil
}

// rawStatus is the status of a flat without an allocation for the known
// ones.
func rawStatus(b []byte) Status {
	switch string(b) {
	case string(StatusApproved):
		return StatusApproved
	case string(StatusCreated):
		return StatusCreated
	case string(StatusDeclined):
		return StatusDeclined
	case string(StatusOnModeration):
		return StatusOnModeration
	}
	return Status(b)
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
// update_at and version, inserts f and runs the hook, all in one transaction. The house
// row lock taken by the counter update serialises creations per house.
// update_at is the clock once that lock is held (never earlier than it was:
// now() is the transaction's start, and a creation that waited for the lock
// would move it back) and is the new flat's created_at too.
func (s *store) createFlat(ctx context.Context, f *Flat, actor string) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var house houseRow
		err := tx.NewUpdate().Model(&house).
			Set("flats_count = flats_count + 1").
			Set("update_at = greatest(update_at, clock_timestamp())").
			Set("version = version + 1").
			Where("id = ?", f.HouseID).
			Returning("flats_count, address, update_at").
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return houseNotFound(f.HouseID)
		}
		if err != nil {
			return fmt.Errorf("bump flat number: %w", err)
		}
		row := &flatRow{HouseID: f.HouseID, Number: house.FlatsCount, Price: f.Price, Rooms: f.Rooms, Status: string(f.Status),
			CreatedAt: house.UpdateAt, UpdatedAt: house.UpdateAt}
		_, err = tx.NewInsert().Model(row).
			Column("house_id", "number", "price", "rooms", "status", "created_at", "updated_at").
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
		// The listing of the house changed: a new version, in this
		// transaction, so that no cache serves the old one after the commit.
		if _, err := tx.NewUpdate().Model((*houseRow)(nil)).
			Set("version = version + 1").
			Where("id = ?", f.HouseID).
			Exec(ctx); err != nil {
			return fmt.Errorf("bump house version: %w", err)
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

func byID(a, b *Flat) int { return cmp.Compare(a.ID, b.ID) }

func houseNotFound(id int32) error {
	return apperr.E(apperr.NotFound, "house %d not found", id)
}
