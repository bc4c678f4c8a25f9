package home

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/pkg/authn"
)

func TestConcurrentFlatNumbers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := e.as(authn.RoleClient)
	h := e.as(authn.RoleModerator).house(t)
	const n = 20
	numbers := make([]int32, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := client.CreateFlat(context.Background(), connect.NewRequest(&homev1.CreateFlatRequest{HouseId: h.GetId(), Price: int32(i), Rooms: 1}))
			if err != nil {
				errs[i] = err
				return
			}
			numbers[i] = res.Msg.GetFlat().GetNumber()
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("creation %d: %v", i, err)
		}
	}
	slices.Sort(numbers)
	for i, got := range numbers {
		if got != int32(i+1) {
			t.Fatalf("numbers = %v, want 1..%d", numbers, n)
		}
	}
	if evs := e.recorded(); len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	// update_at is the time of the last flat added, and never moves back
	// however the creations were serialised: flats in number order have
	// non-decreasing created_at, and the house's update_at is the last one.
	var backwards int
	var stale bool
	err := e.db.NewRaw(`SELECT
		(SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY number) AS back
			FROM flats WHERE house_id = ?0) x WHERE back),
		(SELECT h.update_at <> max(f.created_at) FROM houses h JOIN flats f ON f.house_id = h.id
			WHERE h.id = ?0 GROUP BY h.update_at)`, h.GetId()).Scan(context.Background(), &backwards, &stale)
	if err != nil {
		t.Fatal(err)
	}
	if backwards != 0 || stale {
		t.Fatalf("%d flats created before the flat numbered before them; update_at is not the last creation: %v", backwards, stale)
	}
}

func TestModeratorsRaceToTakeAFlat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.as(authn.RoleModerator).house(t)
	f := e.as(authn.RoleClient).flat(t, h.GetId())
	const n = 10
	mods := make([]caller, n)
	for i := range mods {
		mods[i] = e.as(authn.RoleModerator)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = mods[i].update(f.GetId(), "on moderation")
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("moderators %d and %d both took the flat", winner, i)
			}
			winner = i
		case connect.CodeOf(err) == connect.CodeAborted:
		default:
			t.Fatalf("moderator %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody took the flat")
	}
	if status, holder := e.flatRowOf(f.GetId()); status != "on moderation" || holder.UUID.String() != mods[winner].id {
		t.Fatalf("row = %s held by %v, want held by winner %s", status, holder, mods[winner].id)
	}
	if evs := e.recorded(); len(evs) != 2 { // created, the one take
		t.Fatalf("%d events, want 2", len(evs))
	}
}

// TestRaceApproveReleaseTake races, on a flat the holder has on moderation,
// the holder approving, the holder releasing and another moderator taking.
// Whatever happens must be what one serial order of the three would give:
// the same calls succeed and the row ends in the same state.
func TestRaceApproveReleaseTake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	holder, other := e.as(authn.RoleModerator), e.as(authn.RoleModerator)
	h := holder.house(t)
	type op struct {
		who caller
		to  Status
	}
	ops := []op{{holder, StatusApproved}, {holder, StatusCreated}, {other, StatusOnModeration}}

	// Every outcome a serial order can produce: which ops succeed, final row.
	type outcome struct {
		ok     [3]bool
		status Status
		holder string // "" when nobody holds the flat
	}
	possible := map[outcome]bool{}
	for _, order := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		f := &Flat{Status: StatusOnModeration, Moderator: uuid.MustParse(holder.id)}
		var o outcome
		for _, i := range order {
			o.ok[i] = f.SetStatus(uuid.MustParse(ops[i].who.id), ops[i].to) == nil
		}
		o.status, o.holder = f.Status, heldBy(f.Moderator)
		possible[o] = true
	}

	seen := map[outcome]int{}
	for range 15 {
		f := holder.flat(t, h.GetId())
		holder.mustUpdate(t, f.GetId(), "on moderation")
		events := len(e.recorded())
		var got outcome
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, o := range ops {
			wg.Go(func() {
				<-start
				_, err := o.who.update(f.GetId(), string(o.to))
				got.ok[i] = err == nil
				if err != nil && connect.CodeOf(err) != connect.CodeAborted {
					t.Errorf("%s by %s: %v", o.to, o.who.id, err)
				}
			})
		}
		close(start)
		wg.Wait()
		status, mod := e.flatRowOf(f.GetId())
		got.status, got.holder = Status(status), heldBy(mod.UUID)
		if !possible[got] {
			t.Fatalf("outcome %+v matches no serial order", got)
		}
		succeeded := 0
		for _, ok := range got.ok {
			if ok {
				succeeded++
			}
		}
		if d := len(e.recorded()) - events; d != succeeded {
			t.Fatalf("%d events for %d successful changes", d, succeeded)
		}
		seen[got]++
	}
	t.Logf("outcomes: %v", seen)
}

func heldBy(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// TestListingUsesHouseIndexes pins the hot path: listing a house's flats is
// a primary-key lookup of the house and an index-only scan of its range,
// already in id order (planner told not to seq scan, since test tables are
// tiny).
func TestListingUsesHouseIndexes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// An all-visible table, as a vacuumed production one mostly is.
	if _, err := e.db.ExecContext(ctx, "VACUUM ANALYZE flats"); err != nil {
		t.Fatal(err)
	}
	for approvedOnly, index := range map[bool]string{false: "flats_house_id_id_idx", true: "flats_house_id_id_approved_idx"} {
		err := e.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"); err != nil {
				return err
			}
			q := listingSQL
			if approvedOnly {
				q = approvedListingSQL
			}
			rows, err := tx.Tx.QueryContext(ctx, "EXPLAIN "+q, 1, -1)
			if err != nil {
				return err
			}
			defer func() { _ = rows.Close() }()
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				plan = append(plan, line)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "Index Only Scan using "+index) || strings.Contains(text, "Sort") {
				t.Errorf("approvedOnly=%v plan:\n%s", approvedOnly, text)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
