package home

import (
	"context"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
)

// FlatChangeHook is called inside the transaction that creates a flat or
// really changes its status, with that transaction; an error rolls the whole
// change back. The outbox publisher plugs in here, so that a status change
// and its notifications are committed together or not at all.
type FlatChangeHook func(ctx context.Context, tx bun.Tx, ev *eventsv1.FlatStatusChanged) error

func noHook(context.Context, bun.Tx, *eventsv1.FlatStatusChanged) error { return nil }

// flatEvent describes f after a change from old ("" for a new flat) made by
// actor; it happened when the flat was last written.
func flatEvent(f *Flat, old Status, houseAddress, actor string) *eventsv1.FlatStatusChanged {
	return &eventsv1.FlatStatusChanged{
		FlatId:       f.ID,
		HouseId:      f.HouseID,
		Number:       f.Number,
		Price:        f.Price,
		Rooms:        f.Rooms,
		OldStatus:    string(old),
		NewStatus:    string(f.Status),
		HouseAddress: houseAddress,
		OccurredAt:   timestamppb.New(f.UpdatedAt.UTC()),
		ActorId:      actor,
	}
}
