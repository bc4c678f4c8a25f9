package events

import (
	"database/sql"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// SubscriberConfig configures NewSubscriber.
type SubscriberConfig struct {
	// ConsumerGroup shares one offset among all processes of the group: each
	// event is handled once per group, by whichever process reads it first.
	ConsumerGroup string
	// PollInterval is the longest wait between two reads when nothing
	// arrives; a Wake cuts it short. Zero means one second.
	PollInterval time.Duration
	// AckDeadline bounds one handler run (zero means 30 s). The event's
	// read transaction stays open that long at most.
	AckDeadline time.Duration
	// Wake, when not nil, ends a poll wait early: send on it (without
	// blocking, capacity one) when a NOTIFY on OutboxChannel arrives.
	Wake <-chan struct{}
	// Done, when closed, ends poll waits, so closing is not held up by them.
	Done <-chan struct{}
}

// NewSubscriber returns a watermill-sql subscriber of the outbox that reads
// through db (bun's *sql.DB). It relies on the tables of migrations/0004.
func NewSubscriber(db *sql.DB, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*wsql.Subscriber, error) {
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	ack := cfg.AckDeadline
	if ack <= 0 {
		ack = 30 * time.Second
	}
	retry := time.Second
	return wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		ConsumerGroup:  cfg.ConsumerGroup,
		AckDeadline:    &ack,
		PollInterval:   poll,
		ResendInterval: 100 * time.Millisecond,
		RetryInterval:  retry,
		BackoffManager: &wakeBackoff{
			inner: wsql.NewDefaultBackoffManager(poll, retry),
			poll:  poll,
			wake:  cfg.Wake,
			done:  cfg.Done,
		},
		SchemaAdapter:  Schema(),
		OffsetsAdapter: OffsetsAdapter(),
	}, logger)
}

// wakeBackoff is watermill-sql's default backoff, except that an empty read
// waits here for a wake-up or the poll interval, then asks for an immediate
// new read. The subscriber calls it between reads, so a NOTIFY that arrives
// during a read leaves a token in wake and the next wait ends at once: no
// wake-up is lost.
//
// A woken read can still come back empty: watermill-sql only reads events
// older than every transaction still running on the whole server (its
// ordering guarantee), so any concurrent writer delays them a little. After
// a wake-up the next few empty reads therefore wait only burstPoll.
type wakeBackoff struct {
	inner wsql.BackoffManager
	poll  time.Duration
	wake  <-chan struct{}
	done  <-chan struct{}
	burst int // fast re-reads left after the last wake-up
}

const (
	burstPoll  = 20 * time.Millisecond
	burstReads = 15
)

func (b *wakeBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil && b.closing() {
		return 0 // a read cut short by closing is no error worth a log line
	}
	d := b.inner.HandleError(logger, noMsg, err)
	if err != nil || !noMsg {
		return d
	}
	wait := b.poll
	if b.burst > 0 {
		b.burst--
		wait = min(wait, burstPoll)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.wake:
		b.burst = burstReads
	case <-b.done:
	case <-t.C:
	}
	return 0
}

func (b *wakeBackoff) closing() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}
