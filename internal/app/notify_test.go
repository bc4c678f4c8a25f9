package app_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestApprovalNotifiesSubscribers goes through the REST API end to end: two
// subscribers of a house, one of another house; a flat is created, declined,
// another approved — only the approval mails, once per subscriber of its
// house.
func TestApprovalNotifiesSubscribers(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	hid := createHouse(t, in, mod, map[string]any{"address": "Notify 1", "year": 2020}).Num(t, "id")
	other := createHouse(t, in, mod, map[string]any{"address": "Other 2", "year": 2020}).Num(t, "id")
	for _, email := range []string{"a@example.com", "b@example.com"} {
		in.Do(t, post, fmt.Sprintf("/house/%d/subscribe", hid), client, map[string]any{"email": email}).MustOK(t)
	}
	in.Do(t, post, fmt.Sprintf("/house/%d/subscribe", other), client, map[string]any{"email": "c@example.com"}).MustOK(t)

	declined := createFlat(t, in, client, hid, 100, 1).Num(t, "id")
	approved := createFlat(t, in, client, hid, 5_000_000, 3).Num(t, "id")
	for _, step := range []struct {
		id     int
		status string
	}{{declined, "on moderation"}, {declined, "declined"}, {approved, "on moderation"}, {approved, "approved"}} {
		in.Do(t, post, "/flat/update", mod, map[string]any{"id": step.id, "status": step.status}).MustOK(t)
	}

	deadline := time.Now().Add(20 * time.Second)
	for len(in.Mail.Messages()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong extra message to show up
	msgs := in.Mail.Messages()
	var to []string
	for _, m := range msgs {
		if int(m.FlatID) != approved || int(m.HouseID) != hid || m.Rooms != 3 || m.Price != 5_000_000 || m.HouseAddress != "Notify 1" {
			t.Errorf("unexpected message: %+v", m)
		}
		to = append(to, m.To)
	}
	sort.Strings(to)
	if fmt.Sprint(to) != "[a@example.com b@example.com]" {
		t.Fatalf("mailed %v, want exactly a@ and b@ once each", to)
	}
	stats, err := in.App.Sender().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != 2 {
		t.Fatalf("stats: %+v", stats)
	}
}
