package sender

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/homeservices/homes/pkg/events"
)

// Stats is a snapshot of the sender's state in the database, shared by all
// sender processes.
type Stats struct {
	// Pending deliveries wait for their first or next attempt.
	Pending int64
	// Sending deliveries are claimed by a process right now.
	Sending int64
	// Sent deliveries were handed to the mailer, exactly once each.
	Sent int64
	// Failed deliveries used up their attempts; see Redrive.
	Failed int64
	// OldestOpenLag is the time since the approval of the oldest delivery
	// still pending or sending; zero when there is none.
	OldestOpenLag time.Duration
	// OutboxBacklog is the number of events the consumer group has not
	// handled yet.
	OutboxBacklog int64
	// OutboxLag is the age of the oldest unhandled event.
	OutboxLag time.Duration
}

const deliveryStatsQuery = `
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'sending') AS sending,
       count(*) FILTER (WHERE state = 'sent')    AS sent,
       count(*) FILTER (WHERE state = 'failed')  AS failed,
       coalesce(extract(epoch FROM now() - min(approved_at)
                FILTER (WHERE state IN ('pending', 'sending'))), 0)::float8 AS lag
  FROM deliveries`

// unconsumed is the condition "event m is past the group's offset o";
// the same test as watermill-sql's select, negated for cleanup.
const outboxStatsQuery = `
SELECT count(*) AS backlog,
       coalesce(extract(epoch FROM now() - min(m.created_at)), 0)::float8 AS lag
  FROM ? AS m
 WHERE NOT EXISTS (
       SELECT 1 FROM ? AS o
        WHERE o.consumer_group = ?
          AND (m.transaction_id < o.last_processed_transaction_id
               OR (m.transaction_id = o.last_processed_transaction_id AND m."offset" <= o.offset_acked)))`

const cleanupQuery = `
DELETE FROM ? AS m
 USING ? AS o
 WHERE o.consumer_group = ?
   AND m.created_at < now() - ? * interval '1 millisecond'
   AND (m.transaction_id < o.last_processed_transaction_id
        OR (m.transaction_id = o.last_processed_transaction_id AND m."offset" <= o.offset_acked))`

// expireQuery fails deliveries whose last allowed attempt never reported
// back (the process died during it): they cannot be claimed again.
const expireQuery = `
UPDATE deliveries
   SET state = 'failed',
       last_error = 'lease expired during the last attempt (sender stopped)',
       updated_at = now()
 WHERE state = 'sending' AND next_attempt_at <= now() AND attempts >= ?`

// Stats reads the current counts and lags.
func (s *Sender) Stats(ctx context.Context) (Stats, error) {
	return ReadStats(ctx, s.db, s.cfg.ConsumerGroup)
}

// ReadStats is Stats for the senders of consumerGroup, for tools that run
// no Sender.
func ReadStats(ctx context.Context, db bun.IDB, consumerGroup string) (Stats, error) {
	var row struct {
		Pending, Sending, Sent, Failed int64
		Lag                            float64
	}
	if err := db.NewRaw(deliveryStatsQuery).Scan(ctx, &row.Pending, &row.Sending, &row.Sent, &row.Failed, &row.Lag); err != nil {
		return Stats{}, fmt.Errorf("read delivery stats: %w", err)
	}
	var backlog int64
	var lag float64
	topic := events.TopicFlatStatusChanged
	if err := db.NewRaw(outboxStatsQuery,
		quoteTable(events.MessagesTable(topic)), quoteTable(events.OffsetsTable(topic)), consumerGroup,
	).Scan(ctx, &backlog, &lag); err != nil {
		return Stats{}, fmt.Errorf("read outbox stats: %w", err)
	}
	return Stats{
		Pending: row.Pending, Sending: row.Sending, Sent: row.Sent, Failed: row.Failed,
		OldestOpenLag: seconds(row.Lag),
		OutboxBacklog: backlog, OutboxLag: seconds(lag),
	}, nil
}

// quoteTable quotes a table name as one identifier. bun.Ident would read
// the dots of a topic's table name as schema separators.
func quoteTable(name string) bun.Safe { return bun.Safe(pgx.Identifier{name}.Sanitize()) }

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// DeliveryFilter selects deliveries; its zero value selects all of them.
type DeliveryFilter struct {
	ID     int64 // only this delivery, unless 0
	FlatID int32 // only the deliveries of this flat, unless 0
}

// failed narrows q to the failed deliveries f selects.
func (f DeliveryFilter) failed(q bun.QueryBuilder) bun.QueryBuilder {
	q = q.Where("state = ?", StateFailed)
	if f.ID != 0 {
		q = q.Where("id = ?", f.ID)
	}
	if f.FlatID != 0 {
		q = q.Where("flat_id = ?", f.FlatID)
	}
	return q
}

// FailedDelivery is a delivery that used up its attempts.
type FailedDelivery struct {
	ID        int64     `bun:"id"`
	FlatID    int32     `bun:"flat_id"`
	Email     string    `bun:"email"`
	Attempts  int       `bun:"attempts"`
	LastError string    `bun:"last_error"`
	FailedAt  time.Time `bun:"updated_at"`
}

// ListFailed returns up to limit (all when limit <= 0) of the failed
// deliveries f selects, in the order they were created.
func ListFailed(ctx context.Context, db bun.IDB, f DeliveryFilter, limit int) ([]FailedDelivery, error) {
	var rows []FailedDelivery
	err := db.NewSelect().TableExpr("deliveries").
		Column("id", "flat_id", "attempts", "updated_at").
		ColumnExpr("email::text AS email").
		ColumnExpr("coalesce(last_error, '') AS last_error").
		ApplyQueryBuilder(f.failed).
		OrderExpr("id").Limit(int64(limit)).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	return rows, nil
}

// Redrive puts every failed delivery back to pending with fresh attempts and
// wakes the senders; it returns how many it re-drove.
func (s *Sender) Redrive(ctx context.Context) (int64, error) {
	return RedriveFailed(ctx, s.db, DeliveryFilter{})
}

// RedriveFailed puts the failed deliveries f selects back to pending with
// fresh attempts and wakes the senders; it returns how many it re-drove.
// It needs no running Sender (homes deliveries redrive calls it). The same
// in SQL is in migrations/0005_deliveries.tx.up.sql.
func RedriveFailed(ctx context.Context, db bun.IDB, f DeliveryFilter) (int64, error) {
	var n int64
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Table("deliveries").
			Set("state = ?", StatePending).
			Set("attempts = 0").
			Set("next_attempt_at = now()").
			Set("updated_at = now()").
			ApplyQueryBuilder(f.failed).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("re-drive deliveries: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("count re-driven deliveries: %w", err)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, '')", DeliveryChannel); err != nil {
			return fmt.Errorf("notify deliveries: %w", err)
		}
		return nil
	})
	return n, err
}

// CleanupOutbox deletes events that the consumer group handled and that are
// older than CleanupAge; it returns how many.
func (s *Sender) CleanupOutbox(ctx context.Context) (int64, error) {
	topic := events.TopicFlatStatusChanged
	res, err := s.db.ExecContext(ctx, cleanupQuery,
		quoteTable(events.MessagesTable(topic)), quoteTable(events.OffsetsTable(topic)),
		s.cfg.ConsumerGroup, s.cfg.CleanupAge.Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("clean up outbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("count cleaned outbox rows: %w", err)
	}
	return n, nil
}

// housekeep logs stats, cleans the outbox and fails expired last attempts,
// each on its own period, until ctx ends.
func (s *Sender) housekeep(ctx context.Context) {
	stats := time.NewTicker(s.cfg.StatsInterval)
	defer stats.Stop()
	cleanup := time.NewTicker(s.cfg.CleanupInterval)
	defer cleanup.Stop()
	expire := time.NewTicker(s.cfg.Lease / 2)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stats.C:
			st, err := s.Stats(ctx)
			if err != nil {
				s.log.Warn("read sender stats", "error", err)
				continue
			}
			s.log.Info("sender stats",
				"pending", st.Pending, "sending", st.Sending, "sent", st.Sent, "failed", st.Failed,
				"oldest_open_lag", st.OldestOpenLag.Round(time.Millisecond),
				"outbox_backlog", st.OutboxBacklog, "outbox_lag", st.OutboxLag.Round(time.Millisecond))
		case <-cleanup.C:
			n, err := s.CleanupOutbox(ctx)
			if err != nil {
				s.log.Warn("clean up outbox", "error", err)
			} else if n > 0 {
				s.log.Info("outbox cleaned", "deleted", n)
			}
		case <-expire.C:
			res, err := s.db.ExecContext(ctx, expireQuery, s.cfg.MaxAttempts)
			if err != nil {
				s.log.Warn("fail expired deliveries", "error", err)
				continue
			}
			if n, _ := res.RowsAffected(); n > 0 {
				s.log.Warn("deliveries failed after a lost last attempt", "count", n)
			}
		}
	}
}
