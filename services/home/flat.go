package home

import (
	"time"

	"github.com/google/uuid"

	"github.com/homeservices/homes/pkg/apperr"
)

// Status is the moderation status of a flat.
type Status string

// The statuses of API.md, spelled exactly as the contract spells them.
const (
	StatusCreated      Status = "created"
	StatusApproved     Status = "approved"
	StatusDeclined     Status = "declined"
	StatusOnModeration Status = "on moderation"
)

// ParseStatus reads a status from input, where "on_moderation" is accepted
// as "on moderation". Anything else is an Invalid error naming the field.
func ParseStatus(s string) (Status, error) {
	if Status(s).valid() {
		return Status(s), nil
	}
	if s == "on_moderation" {
		return StatusOnModeration, nil
	}
	return "", apperr.E(apperr.Invalid, "status must be one of created, approved, declined, on moderation")
}

func (s Status) valid() bool {
	switch s {
	case StatusCreated, StatusApproved, StatusDeclined, StatusOnModeration:
		return true
	}
	return false
}

// Flat is one flat of a house.
type Flat struct {
	ID      int32
	HouseID int32
	// Number is the flat's number inside its house, assigned by the store.
	Number int32
	Price  int32
	Rooms  int32
	Status Status
	// Moderator holds the flat while it is on moderation; uuid.Nil otherwise.
	Moderator uuid.UUID
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewFlat validates a new flat; it starts as created, without a number until
// the store assigns one.
func NewFlat(houseID, price, rooms int32) (*Flat, error) {
	if err := validID("house_id", houseID); err != nil {
		return nil, err
	}
	if price < 0 {
		return nil, apperr.E(apperr.Invalid, "price must be >= 0")
	}
	if rooms < 1 || rooms > 100 {
		return nil, apperr.E(apperr.Invalid, "rooms must be between 1 and 100")
	}
	return &Flat{HouseID: houseID, Price: price, Rooms: rooms, Status: StatusCreated}, nil
}

// SetStatus applies the moderation state machine: moderator asks to move the
// flat to status to. It is pure; the store runs it on a row it has locked.
//
//	created       → on moderation  any moderator takes the flat and holds it
//	on moderation → approved       only the holder; the hold ends
//	on moderation → declined       only the holder; the hold ends
//	on moderation → created        only the holder releases it
//
// A flat held by someone else answers Conflict to every request, the
// holder's own status included. Every other transition is a Conflict.
//
// Asking for the status the flat already has is a no-op (nil error, flat
// unchanged) for the moderator entitled to it: the holder for on moderation;
// any moderator for created, approved and declined, because nobody holds a
// flat in those statuses — no one has a better claim than the caller, the
// state the caller wants is already there, and a retried approve or decline
// must not fail.
func (f *Flat) SetStatus(moderator uuid.UUID, to Status) error {
	if moderator == uuid.Nil {
		return apperr.E(apperr.Forbidden, "a moderator identity is required")
	}
	if !to.valid() {
		return apperr.E(apperr.Invalid, "status must be one of created, approved, declined, on moderation")
	}
	if f.Status == StatusOnModeration && f.Moderator != moderator {
		return apperr.E(apperr.Conflict, "flat %d is on moderation by another moderator", f.ID)
	}
	if f.Status == to {
		return nil
	}
	switch {
	case f.Status == StatusCreated && to == StatusOnModeration:
		f.Status, f.Moderator = to, moderator
	case f.Status == StatusOnModeration: // held by moderator: approve, decline or release
		f.Status, f.Moderator = to, uuid.Nil
	default:
		return apperr.E(apperr.Conflict, "flat %d cannot go from %s to %s", f.ID, f.Status, to)
	}
	return nil
}

func validID(field string, id int32) error {
	if id < 1 {
		return apperr.E(apperr.Invalid, "%s must be >= 1", field)
	}
	return nil
}
