package sender_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/pg/pgtest"
	"github.com/homeservices/homes/services/sender"
)

// delivery inserts a delivery of flat to email in state and returns its id.
func delivery(t *testing.T, db *bun.DB, flatID int32, email, state string) int64 {
	t.Helper()
	var id int64
	err := db.NewRaw(`
		INSERT INTO deliveries (flat_id, email, house_id, house_address, flat_number, rooms, price, event_id, approved_at,
		                        state, attempts, last_error, sent_at)
		VALUES (?, ?, 1, 'x', 1, 1, 1, 'ev', now(), ?, 3, '550 no such user', CASE WHEN ? = 'sent' THEN now() END)
		RETURNING id`, flatID, email, state, state).Scan(context.Background(), &id)
	if err != nil {
		t.Fatalf("insert delivery: %v", err)
	}
	return id
}

func TestListAndRedriveFailedByFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, tc := range map[string]struct {
		filter func(ids []int64) sender.DeliveryFilter
		want   []int // indexes into the failed deliveries below
	}{
		"all":          {filter: func([]int64) sender.DeliveryFilter { return sender.DeliveryFilter{} }, want: []int{0, 1, 2}},
		"one flat":     {filter: func([]int64) sender.DeliveryFilter { return sender.DeliveryFilter{FlatID: 7} }, want: []int{0, 1}},
		"one delivery": {filter: func(ids []int64) sender.DeliveryFilter { return sender.DeliveryFilter{ID: ids[1]} }, want: []int{1}},
		"delivery of the flat": {
			filter: func(ids []int64) sender.DeliveryFilter { return sender.DeliveryFilter{ID: ids[2], FlatID: 8} }, want: []int{2},
		},
		"delivery of another flat": {
			filter: func(ids []int64) sender.DeliveryFilter { return sender.DeliveryFilter{ID: ids[2], FlatID: 7} },
		},
		"flat without failures": {filter: func([]int64) sender.DeliveryFilter { return sender.DeliveryFilter{FlatID: 9} }},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			failed := []int64{
				delivery(t, db, 7, "a@example.com", sender.StateFailed),
				delivery(t, db, 7, "b@example.com", sender.StateFailed),
				delivery(t, db, 8, "a@example.com", sender.StateFailed),
			}
			others := []int64{
				delivery(t, db, 7, "c@example.com", sender.StateSent),
				delivery(t, db, 9, "a@example.com", sender.StatePending),
			}
			f := tc.filter(failed)

			list, err := sender.ListFailed(ctx, db, f, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("listed %+v, want deliveries %v", list, tc.want)
			}
			for i, w := range tc.want {
				if d := list[i]; d.ID != failed[w] || d.Attempts != 3 || d.LastError != "550 no such user" || d.Email == "" || d.FailedAt.IsZero() {
					t.Errorf("listed %+v, want delivery %d", d, failed[w])
				}
			}
			if len(tc.want) > 1 {
				if short, err := sender.ListFailed(ctx, db, f, 1); err != nil || len(short) != 1 {
					t.Errorf("list with limit 1: %d rows, %v", len(short), err)
				}
			}

			n, err := sender.RedriveFailed(ctx, db, f)
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("redrive = %d, %v; want %d", n, err, len(tc.want))
			}
			redriven := map[int64]bool{}
			for _, w := range tc.want {
				redriven[failed[w]] = true
			}
			st, err := sender.ReadStats(ctx, db, "sender")
			if err != nil {
				t.Fatal(err)
			}
			if st.Failed != int64(len(failed)-len(tc.want)) || st.Pending != int64(1+len(tc.want)) || st.Sent != 1 {
				t.Errorf("after redrive: %+v", st)
			}
			for _, id := range append(failed, others...) {
				var state string
				var attempts int
				if err := db.NewRaw("SELECT state, attempts FROM deliveries WHERE id = ?", id).Scan(ctx, &state, &attempts); err != nil {
					t.Fatal(err)
				}
				if redriven[id] && (state != sender.StatePending || attempts != 0) {
					t.Errorf("delivery %d re-driven: %s after %d attempts", id, state, attempts)
				}
				if !redriven[id] && attempts != 3 {
					t.Errorf("delivery %d not selected but changed: %s after %d attempts", id, state, attempts)
				}
			}
		})
	}
}
