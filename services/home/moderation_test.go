package home

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/pkg/authn"
)

func TestModerationEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mod, other := e.as(authn.RoleModerator), e.as(authn.RoleModerator)
	client := e.as(authn.RoleClient)
	h := mod.house(t)
	f := client.flat(t, h.GetId())

	if got := mod.mustUpdate(t, f.GetId(), "created"); got.GetStatus() != "created" { // no-op
		t.Fatalf("no-op returned %v", got)
	}
	mod.mustUpdate(t, f.GetId(), "on_moderation")
	if got := mod.mustUpdate(t, f.GetId(), "on moderation"); got.GetStatus() != "on moderation" { // no-op
		t.Fatalf("no-op returned %v", got)
	}
	for _, s := range []string{"on moderation", "approved", "declined", "created"} {
		_, err := other.update(f.GetId(), s)
		wantCode(t, err, connect.CodeAborted)
	}
	if status, holder := e.flatRowOf(f.GetId()); status != "on moderation" || holder.UUID.String() != mod.id {
		t.Fatalf("row = %s held by %v, want on moderation held by %s", status, holder, mod.id)
	}
	got := mod.mustUpdate(t, f.GetId(), "approved")
	if got.GetStatus() != "approved" || got.GetNumber() != 1 || got.GetId() != f.GetId() {
		t.Fatalf("approved flat = %v", got)
	}
	mod.mustUpdate(t, f.GetId(), "approved")   // no-op for the decider
	other.mustUpdate(t, f.GetId(), "approved") // and for anyone: nobody holds it
	_, err := mod.update(f.GetId(), "declined")
	wantCode(t, err, connect.CodeAborted)
	if status, holder := e.flatRowOf(f.GetId()); status != "approved" || holder.Valid {
		t.Fatalf("row = %s held by %v, want approved, not held", status, holder)
	}

	evs := e.recorded()
	type step struct{ old, new, actor string }
	want := []step{{"", "created", client.id}, {"created", "on moderation", mod.id}, {"on moderation", "approved", mod.id}}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		if (step{ev.GetOldStatus(), ev.GetNewStatus(), ev.GetActorId()}) != want[i] {
			t.Errorf("event %d = %v, want %v", i, ev, want[i])
		}
		if ev.GetFlatId() != f.GetId() || ev.GetHouseId() != h.GetId() || ev.GetNumber() != 1 ||
			ev.GetPrice() != 1000 || ev.GetRooms() != 2 || ev.GetHouseAddress() != "Lenina 1" ||
			time.Since(ev.GetOccurredAt().AsTime()).Abs() > time.Minute {
			t.Errorf("event %d = %v", i, ev)
		}
	}
}

func TestHookErrorRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mod := e.as(authn.RoleModerator)
	h := mod.house(t)
	f := mod.flat(t, h.GetId())
	mod.mustUpdate(t, f.GetId(), "on moderation")
	e.mu.Lock()
	e.fail = func(ev *eventsv1.FlatStatusChanged) bool { return ev.GetNewStatus() != "on moderation" }
	e.mu.Unlock()

	_, err := mod.update(f.GetId(), "approved")
	wantCode(t, err, connect.CodeInternal)
	if strings.Contains(err.Error(), errHook.Error()) {
		t.Errorf("internal cause leaked: %v", err)
	}
	if status, holder := e.flatRowOf(f.GetId()); status != "on moderation" || holder.UUID.String() != mod.id {
		t.Fatalf("after failed approve: %s held by %v", status, holder)
	}

	var before houseRow
	if err := e.db.NewSelect().Model(&before).Where("id = ?", h.GetId()).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = mod.CreateFlat(ctx, connect.NewRequest(&homev1.CreateFlatRequest{HouseId: h.GetId(), Price: 5, Rooms: 5}))
	wantCode(t, err, connect.CodeInternal)
	var after houseRow
	if err := e.db.NewSelect().Model(&after).Where("id = ?", h.GetId()).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := e.db.NewSelect().Table("flats").Where("house_id = ?", h.GetId()).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || after.FlatsCount != before.FlatsCount || !after.UpdateAt.Equal(before.UpdateAt) {
		t.Fatalf("failed creation left %d flats, flats_count %d→%d, update_at %v→%v",
			n, before.FlatsCount, after.FlatsCount, before.UpdateAt, after.UpdateAt)
	}

	e.mu.Lock()
	e.fail = nil
	e.mu.Unlock()
	if g := mod.flat(t, h.GetId()); g.GetNumber() != 2 {
		t.Fatalf("next flat has number %d, want 2 (the failed one took none)", g.GetNumber())
	}
	mod.mustUpdate(t, f.GetId(), "approved")
	if n := len(e.recorded()); n != 4 { // created, on moderation, created #2, approved
		t.Fatalf("%d events, want 4", n)
	}
}
