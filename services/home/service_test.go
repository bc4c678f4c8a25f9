package home

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/pkg/authn"
)

func TestCreateHouseAndFlats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mod, client := e.as(authn.RoleModerator), e.as(authn.RoleClient)

	res, err := mod.CreateHouse(ctx, connect.NewRequest(&homev1.CreateHouseRequest{
		Address: "Tverskaya 7", Year: 1999, Developer: wrapperspb.String("Mosstroy"),
	}))
	if err != nil {
		t.Fatalf("create house: %v", err)
	}
	h := res.Msg.GetHouse()
	if h.GetId() < 1 || h.GetAddress() != "Tverskaya 7" || h.GetYear() != 1999 || h.GetDeveloper().GetValue() != "Mosstroy" {
		t.Fatalf("house = %v", h)
	}
	if !h.GetCreatedAt().AsTime().Equal(h.GetUpdateAt().AsTime()) {
		t.Fatalf("new house: update_at %v != created_at %v", h.GetUpdateAt().AsTime(), h.GetCreatedAt().AsTime())
	}
	if d := time.Since(h.GetCreatedAt().AsTime()); d < -time.Minute || d > time.Minute {
		t.Fatalf("created_at %v is not now", h.GetCreatedAt().AsTime())
	}

	for _, dev := range []*wrapperspb.StringValue{nil, wrapperspb.String("")} {
		res, err := mod.CreateHouse(ctx, connect.NewRequest(&homev1.CreateHouseRequest{Address: "a", Year: 0, Developer: dev}))
		if err != nil {
			t.Fatalf("create house without developer: %v", err)
		}
		if res.Msg.GetHouse().Developer != nil {
			t.Fatalf("developer = %v, want absent", res.Msg.GetHouse().Developer)
		}
	}

	var flats []*homev1.Flat
	for i := range 3 {
		f := client.flat(t, h.GetId())
		if f.GetNumber() != int32(i+1) || f.GetStatus() != "created" || f.GetHouseId() != h.GetId() ||
			f.GetPrice() != 1000 || f.GetRooms() != 2 || f.GetId() < 1 {
			t.Fatalf("flat %d = %v", i, f)
		}
		// update_at is the creation time of the latest flat: same transaction.
		var got houseRow
		if err := e.db.NewSelect().Model(&got).Where("id = ?", h.GetId()).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		var created time.Time
		if err := e.db.NewSelect().Table("flats").Column("created_at").Where("id = ?", f.GetId()).Scan(ctx, &created); err != nil {
			t.Fatal(err)
		}
		if !got.UpdateAt.Equal(created) || !got.UpdateAt.After(h.GetCreatedAt().AsTime()) || got.FlatsCount != int32(i+1) {
			t.Fatalf("after flat %d: house update_at %v, flat created_at %v, flats_count %d", i+1, got.UpdateAt, created, got.FlatsCount)
		}
		flats = append(flats, f)
	}

	// Numbers are per house.
	other := mod.house(t)
	if f := mod.flat(t, other.GetId()); f.GetNumber() != 1 {
		t.Fatalf("first flat of another house has number %d", f.GetNumber())
	}

	got, err := mod.GetHouseFlats(ctx, connect.NewRequest(&homev1.GetHouseFlatsRequest{Id: h.GetId()}))
	if err != nil {
		t.Fatalf("get house flats: %v", err)
	}
	if len(got.Msg.GetFlats()) != 3 {
		t.Fatalf("moderator sees %d flats, want 3", len(got.Msg.GetFlats()))
	}
	for i, f := range got.Msg.GetFlats() {
		if f.GetId() != flats[i].GetId() || f.GetNumber() != flats[i].GetNumber() || f.GetStatus() != "created" {
			t.Fatalf("flat %d = %v, want %v", i, f, flats[i])
		}
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h := e.as(authn.RoleModerator).house(t)
	f := e.as(authn.RoleClient).flat(t, h.GetId())

	calls := map[string]func(c caller) error{
		"CreateHouse": func(c caller) error {
			_, err := c.CreateHouse(ctx, connect.NewRequest(&homev1.CreateHouseRequest{Address: "x", Year: 2000}))
			return err
		},
		"GetHouseFlats": func(c caller) error {
			_, err := c.GetHouseFlats(ctx, connect.NewRequest(&homev1.GetHouseFlatsRequest{Id: h.GetId()}))
			return err
		},
		"Subscribe": func(c caller) error {
			_, err := c.Subscribe(ctx, connect.NewRequest(&homev1.SubscribeRequest{Id: h.GetId(), Email: "a@b.co"}))
			return err
		},
		"CreateFlat": func(c caller) error {
			_, err := c.CreateFlat(ctx, connect.NewRequest(&homev1.CreateFlatRequest{HouseId: h.GetId(), Price: 1, Rooms: 1}))
			return err
		},
		"UpdateFlat": func(c caller) error {
			_, err := c.UpdateFlat(ctx, connect.NewRequest(&homev1.UpdateFlatRequest{Id: f.GetId(), Status: "created"}))
			return err
		},
	}
	moderatorOnly := map[string]bool{"CreateHouse": true, "UpdateFlat": true}
	for name, call := range calls {
		wantCode(t, call(e.as("")), connect.CodeUnauthenticated)
		clientErr := call(e.as(authn.RoleClient))
		if moderatorOnly[name] {
			wantCode(t, clientErr, connect.CodePermissionDenied)
		} else if clientErr != nil {
			t.Errorf("%s as client: %v", name, clientErr)
		}
		if err := call(e.as(authn.RoleModerator)); err != nil {
			t.Errorf("%s as moderator: %v", name, err)
		}
		if err := call(e.as("admin")); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s as unknown role: %v", name, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mod := e.as(authn.RoleModerator)
	const missing = 424242
	_, err := mod.GetHouseFlats(ctx, connect.NewRequest(&homev1.GetHouseFlatsRequest{Id: missing}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = mod.CreateFlat(ctx, connect.NewRequest(&homev1.CreateFlatRequest{HouseId: missing, Price: 1, Rooms: 1}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = mod.Subscribe(ctx, connect.NewRequest(&homev1.SubscribeRequest{Id: missing, Email: "a@b.co"}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = mod.update(missing, "on moderation")
	wantCode(t, err, connect.CodeNotFound)
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Message() != "flat 424242 not found" {
		t.Errorf("error %v, want message %q", err, "flat 424242 not found")
	}
	if n := len(e.recorded()); n != 0 {
		t.Errorf("%d events for failed calls", n)
	}
}

func TestInvalidInputBypassingValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no protovalidate interceptor here: the domain must still refuse
	ctx := context.Background()
	mod := e.as(authn.RoleModerator)
	h := mod.house(t)
	f := mod.flat(t, h.GetId())
	_, err := mod.update(f.GetId(), "published")
	wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "status") {
		t.Errorf("error %q does not name the field status", err)
	}
	for _, req := range []*homev1.CreateFlatRequest{{HouseId: h.GetId(), Price: -1, Rooms: 1}, {HouseId: h.GetId(), Rooms: 0}, {HouseId: 0, Rooms: 1}} {
		_, err := mod.CreateFlat(ctx, connect.NewRequest(req))
		wantCode(t, err, connect.CodeInvalidArgument)
	}
	for _, req := range []*homev1.CreateHouseRequest{{Address: "", Year: 2000}, {Address: "a", Year: -1}, {Address: "a", Year: 9999}, {Address: strings.Repeat("я", 513)}} {
		_, err := mod.CreateHouse(ctx, connect.NewRequest(req))
		wantCode(t, err, connect.CodeInvalidArgument)
	}
	for _, email := range []string{"", "not-an-email", "Bob <bob@x.io>", strings.Repeat("a", 250) + "@x.io"} {
		_, err := mod.Subscribe(ctx, connect.NewRequest(&homev1.SubscribeRequest{Id: h.GetId(), Email: email}))
		wantCode(t, err, connect.CodeInvalidArgument)
	}
}

func TestVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mod, client := e.as(authn.RoleModerator), e.as(authn.RoleClient)
	h := mod.house(t)
	empty := mod.house(t)

	// Direct call: the slice itself is non-nil, so REST answers [] not null.
	for _, role := range []authn.Role{authn.RoleClient, authn.RoleModerator} {
		res, err := e.svc.GetHouseFlats(authn.WithIdentity(ctx, authn.Identity{UserID: client.id, Role: role}),
			connect.NewRequest(&homev1.GetHouseFlatsRequest{Id: empty.GetId()}))
		if err != nil || res.Msg.Flats == nil || len(res.Msg.Flats) != 0 {
			t.Fatalf("empty house as %s: %v, %v", role, res, err)
		}
	}

	var ids []int32
	for range 6 {
		ids = append(ids, client.flat(t, h.GetId()).GetId())
	}
	// flats: created, on moderation, approved, declined, approved, created
	mod.mustUpdate(t, ids[1], "on_moderation")
	for _, i := range []int{2, 3, 4} {
		mod.mustUpdate(t, ids[i], "on moderation")
	}
	mod.mustUpdate(t, ids[2], "approved")
	mod.mustUpdate(t, ids[3], "declined")
	mod.mustUpdate(t, ids[4], "approved")

	list := func(c caller) ([]int32, []string) {
		t.Helper()
		res, err := c.GetHouseFlats(ctx, connect.NewRequest(&homev1.GetHouseFlatsRequest{Id: h.GetId()}))
		if err != nil {
			t.Fatalf("get house flats: %v", err)
		}
		var gotIDs []int32
		var statuses []string
		for _, f := range res.Msg.GetFlats() {
			gotIDs = append(gotIDs, f.GetId())
			statuses = append(statuses, f.GetStatus())
		}
		return gotIDs, statuses
	}
	gotIDs, statuses := list(client)
	if !slices.Equal(gotIDs, []int32{ids[2], ids[4]}) || !slices.Equal(statuses, []string{"approved", "approved"}) {
		t.Fatalf("client sees %v %v", gotIDs, statuses)
	}
	gotIDs, statuses = list(mod)
	want := []string{"created", "on moderation", "approved", "declined", "approved", "created"}
	if !slices.Equal(gotIDs, ids) || !slices.Equal(statuses, want) {
		t.Fatalf("moderator sees %v %v, want %v %v", gotIDs, statuses, ids, want)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	client := e.as(authn.RoleClient)
	h := e.as(authn.RoleModerator).house(t)
	for _, email := range []string{"Anna@Example.COM", "anna@example.com", "ANNA@example.com", "bob@example.com"} {
		if _, err := client.Subscribe(ctx, connect.NewRequest(&homev1.SubscribeRequest{Id: h.GetId(), Email: email})); err != nil {
			t.Fatalf("subscribe %s: %v", email, err)
		}
	}
	var emails []string
	if err := e.db.NewSelect().Table("subscriptions").Column("email").Where("house_id = ?", h.GetId()).Order("email").Scan(ctx, &emails); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(emails, []string{"anna@example.com", "bob@example.com"}) {
		t.Fatalf("subscriptions = %v", emails)
	}
}
