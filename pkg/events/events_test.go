package events_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	"github.com/homeservices/homes/pkg/events"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type outboxRow struct {
	UUID     string `bun:"uuid"`
	Payload  []byte `bun:"payload"`
	Metadata string `bun:"metadata"`
}

func outboxRows(t *testing.T, db *bun.DB) []outboxRow {
	t.Helper()
	var rows []outboxRow
	err := db.NewRaw(`SELECT uuid, payload, metadata::text FROM "watermill_flat.status-changed.v1" ORDER BY "offset"`).
		Scan(context.Background(), &rows)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}

func TestPublishCommitsWithTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	out := events.NewOutbox(quiet)

	// Notifications arrive only when the publishing transaction commits.
	var mu sync.Mutex
	var notified []string
	listenCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	var once sync.Once
	go events.Listen(listenCtx, db.DB, []string{events.OutboxChannel}, func(ch string) {
		once.Do(func() { close(ready) }) // the synthetic call after LISTEN
		mu.Lock()
		notified = append(notified, ch)
		mu.Unlock()
	}, quiet)
	<-ready

	ev := &eventsv1.FlatStatusChanged{FlatId: 7, HouseId: 3, Number: 2, Price: 100, Rooms: 1,
		OldStatus: "on moderation", NewStatus: "approved", HouseAddress: "Lenina 1"}
	boom := errors.New("boom")
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := out.Publish(ctx, tx, ev); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("rolled back tx: %v", err)
	}
	if rows := outboxRows(t, db); len(rows) != 0 {
		t.Fatalf("rolled back publish left %d rows", len(rows))
	}

	if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return out.Publish(ctx, tx, ev)
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	rows := outboxRows(t, db)
	if len(rows) != 1 {
		t.Fatalf("%d outbox rows, want 1", len(rows))
	}
	got := &eventsv1.FlatStatusChanged{}
	if err := proto.Unmarshal(rows[0].Payload, got); err != nil {
		t.Fatal(err)
	}
	if got.GetOccurredAt() == nil {
		t.Error("occurred_at not filled in")
	}
	got.OccurredAt = nil
	ev.OccurredAt = nil
	if !proto.Equal(got, ev) {
		t.Errorf("payload = %v, want %v", got, ev)
	}
	if rows[0].Metadata != `{"event_type":"homes.events.v1.FlatStatusChanged"}` {
		t.Errorf("metadata = %s", rows[0].Metadata)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(notified)
		mu.Unlock()
		if n == 2 { // the synthetic one, then the commit's; none for the rollback
			break
		}
		if n > 2 || time.Now().After(deadline) {
			t.Fatalf("notifications: %v, want the synthetic one and one for the commit", notified)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishNeedsATransactionAndAnEvent(t *testing.T) {
	t.Parallel()
	out := events.NewOutbox(nil)
	if err := out.Publish(context.Background(), bun.Tx{}, &eventsv1.FlatStatusChanged{}); err == nil {
		t.Error("publish without a transaction succeeded")
	}
	db := pgtest.New(t)
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := out.Publish(context.Background(), tx, nil); err == nil {
		t.Error("publish of a nil event succeeded")
	}
}
