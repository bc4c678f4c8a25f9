package home

import (
	"testing"

	"github.com/google/uuid"

	"github.com/homeservices/homes/pkg/apperr"
)

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Status{
		"created": StatusCreated, "approved": StatusApproved, "declined": StatusDeclined,
		"on moderation": StatusOnModeration, "on_moderation": StatusOnModeration,
	} {
		got, err := ParseStatus(in)
		if err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Created", "on-moderation", "onmoderation", " approved", "deleted"} {
		_, err := ParseStatus(in)
		if !apperr.Is(err, apperr.Invalid) {
			t.Errorf("ParseStatus(%q) error = %v, want Invalid", in, err)
		}
	}
}

// TestSetStatus covers every (current status × requested status × actor).
// Only a flat on moderation has a holder, so its rows come twice: acted on
// by the holder and by another moderator; in the other statuses nobody holds
// the flat and the actor is any moderator.
func TestSetStatus(t *testing.T) {
	t.Parallel()
	holder, other := uuid.New(), uuid.New()
	type actor int
	const (
		noHolder actor = iota // the flat is not held; any moderator acts
		byHolder
		byOther
	)
	const (
		ok       = "ok"    // changed
		noop     = "no-op" // nil error, flat untouched
		conflict = "409"   // apperr.Conflict, flat untouched
	)
	created, approved, declined, onMod := StatusCreated, StatusApproved, StatusDeclined, StatusOnModeration
	tests := []struct {
		from    Status
		to      Status
		actor   actor
		want    string
		wantMod uuid.UUID // the holder afterwards, when want is ok
	}{
		{created, created, noHolder, noop, uuid.Nil},
		{created, onMod, noHolder, ok, other}, // the acting moderator takes it
		{created, approved, noHolder, conflict, uuid.Nil},
		{created, declined, noHolder, conflict, uuid.Nil},

		{onMod, onMod, byHolder, noop, holder},
		{onMod, approved, byHolder, ok, uuid.Nil},
		{onMod, declined, byHolder, ok, uuid.Nil},
		{onMod, created, byHolder, ok, uuid.Nil}, // release

		{onMod, onMod, byOther, conflict, holder},
		{onMod, approved, byOther, conflict, holder},
		{onMod, declined, byOther, conflict, holder},
		{onMod, created, byOther, conflict, holder},

		{approved, approved, noHolder, noop, uuid.Nil},
		{approved, onMod, noHolder, conflict, uuid.Nil},
		{approved, declined, noHolder, conflict, uuid.Nil},
		{approved, created, noHolder, conflict, uuid.Nil},

		{declined, declined, noHolder, noop, uuid.Nil},
		{declined, onMod, noHolder, conflict, uuid.Nil},
		{declined, approved, noHolder, conflict, uuid.Nil},
		{declined, created, noHolder, conflict, uuid.Nil},
	}
	seen := map[[2]Status]map[actor]bool{}
	for _, tt := range tests {
		name := string(tt.from) + "→" + string(tt.to) + "/" + [...]string{"any", "holder", "other"}[tt.actor]
		if seen[[2]Status{tt.from, tt.to}] == nil {
			seen[[2]Status{tt.from, tt.to}] = map[actor]bool{}
		}
		seen[[2]Status{tt.from, tt.to}][tt.actor] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &Flat{ID: 7, HouseID: 1, Number: 3, Price: 100, Rooms: 2, Status: tt.from}
			if tt.from == StatusOnModeration {
				f.Moderator = holder
			}
			before := *f
			acting := other
			if tt.actor == byHolder {
				acting = holder
			}
			err := f.SetStatus(acting, tt.to)
			switch tt.want {
			case ok:
				if err != nil {
					t.Fatalf("SetStatus: %v", err)
				}
				if f.Status != tt.to || f.Moderator != tt.wantMod {
					t.Fatalf("flat = %q held by %v, want %q held by %v", f.Status, f.Moderator, tt.to, tt.wantMod)
				}
			case noop:
				if err != nil {
					t.Fatalf("SetStatus: %v", err)
				}
				if *f != before {
					t.Fatalf("no-op changed the flat: %+v", *f)
				}
			case conflict:
				if !apperr.Is(err, apperr.Conflict) {
					t.Fatalf("error = %v, want Conflict", err)
				}
				if *f != before {
					t.Fatalf("refused change altered the flat: %+v", *f)
				}
			}
			if f.ID != before.ID || f.HouseID != before.HouseID || f.Number != before.Number ||
				f.Price != before.Price || f.Rooms != before.Rooms {
				t.Fatalf("SetStatus touched more than status and holder: %+v", *f)
			}
		})
	}
	all := []Status{created, approved, declined, onMod}
	for _, from := range all {
		for _, to := range all {
			actors := seen[[2]Status{from, to}]
			if from == onMod && !(actors[byHolder] && actors[byOther]) || from != onMod && !actors[noHolder] {
				t.Errorf("table misses %s → %s", from, to)
			}
		}
	}
}

func TestSetStatusRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := &Flat{ID: 1, Status: StatusCreated}
	if err := f.SetStatus(uuid.Nil, StatusOnModeration); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("nil moderator: error = %v, want Forbidden", err)
	}
	if err := f.SetStatus(uuid.New(), Status("on_moderation")); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("unparsed status: error = %v, want Invalid", err)
	}
	if f.Status != StatusCreated || f.Moderator != uuid.Nil {
		t.Errorf("refused change altered the flat: %+v", *f)
	}
}

func TestNewFlatAndHouseValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ house, price, rooms int32 }{{0, 1, 1}, {1, -1, 1}, {1, 1, 0}, {1, 1, 101}} {
		if _, err := NewFlat(c.house, c.price, c.rooms); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("NewFlat(%v) error = %v, want Invalid", c, err)
		}
	}
	if f, err := NewFlat(1, 0, 100); err != nil || f.Status != StatusCreated {
		t.Errorf("NewFlat(1, 0, 100) = %+v, %v", f, err)
	}
}
