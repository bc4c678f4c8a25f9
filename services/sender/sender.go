// Package sender emails every subscriber of a house once when one of its
// flats is approved. A watermill router reads the outbox (pkg/events) and
// fans each approval out into rows of the deliveries table; a delivery loop
// claims due rows with FOR UPDATE SKIP LOCKED, sends without holding a
// database connection, and records the outcome. Any number of processes can
// run it on one database and share the work.
package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/trace"

	"github.com/homeservices/homes/pkg/events"
)

// DeliveryChannel is the NOTIFY channel signalled when deliveries become
// due (a fan-out or a re-drive commits), so that every sender process looks
// for work at once.
const DeliveryChannel = "homes_deliveries"

// tracerName is the instrumentation scope of the sender's spans.
const tracerName = "github.com/homeservices/homes/services/sender"

// Sender runs the fan-out handler and the delivery loop.
type Sender struct {
	cfg     Config
	db      *bun.DB
	mailer  Mailer
	log     *slog.Logger
	tracer  trace.Tracer
	running atomic.Bool
}

// New returns a sender over db (opened with pg.Open: bun on pgx stdlib) that
// delivers through mailer. Zero fields of cfg take DefaultConfig's values.
func New(cfg Config, db *bun.DB, mailer Mailer, log *slog.Logger) (*Sender, error) {
	if db == nil {
		return nil, errors.New("create sender: nil database")
	}
	if mailer == nil {
		return nil, errors.New("create sender: nil mailer")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sender{
		cfg: cfg, db: db, mailer: mailer, log: log.With("service", "sender"),
		tracer: cfg.TracerProvider.Tracer(tracerName),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Sender) Config() Config { return s.cfg }

// Run consumes events and delivers emails until ctx ends, then lets
// in-flight sends finish (up to ShutdownGrace), records their outcome and
// returns nil. It fails only if it is already running.
func (s *Sender) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("run sender: already running")
	}
	defer s.running.Store(false)

	outboxWake := make(chan struct{}, 1)
	deliveryWake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		events.Listen(ctx, s.db.DB, []string{events.OutboxChannel, DeliveryChannel}, func(ch string) {
			switch ch {
			case events.OutboxChannel:
				signal(outboxWake)
			case DeliveryChannel:
				signal(deliveryWake)
			}
		}, s.log)
	})
	wg.Go(func() { s.consume(ctx, outboxWake) })
	wg.Go(func() { s.housekeep(ctx) })
	s.deliver(ctx, deliveryWake)
	wg.Wait()
	s.log.Info("sender stopped")
	return nil
}

// signal leaves a wake-up token in ch unless one is already there.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// consume runs the watermill router until ctx ends, starting it again if it
// stops early (e.g. the database was unreachable when it subscribed).
func (s *Sender) consume(ctx context.Context, wake <-chan struct{}) {
	pause := time.Second
	for ctx.Err() == nil {
		err := s.runRouter(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		s.log.Error("event router stopped, restarting", "error", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// routerCloseTimeout caps how long a stop waits for the event handler. A
// fan-out is a few inserts, so this is ample; watermill's router can also
// wait for a handler it never started when a stop races its start, and then
// this bounds the wait.
const routerCloseTimeout = 2 * time.Second

func (s *Sender) runRouter(ctx context.Context, wake <-chan struct{}) error {
	wlog := events.WatermillLogger(s.log)
	sub, err := events.NewSubscriber(s.db.DB, events.SubscriberConfig{
		ConsumerGroup: s.cfg.ConsumerGroup,
		PollInterval:  s.cfg.PollInterval,
		Wake:          wake,
		Done:          ctx.Done(),
	}, wlog)
	if err != nil {
		return fmt.Errorf("create subscriber: %w", err)
	}
	defer func() { _ = sub.Close() }()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: routerCloseTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("create router: %w", err)
	}
	router.AddConsumerHandler("sender.fan-out", events.TopicFlatStatusChanged, sub, s.handle)
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			err = errors.New("router returned")
		}
		return fmt.Errorf("run router: %w", err)
	case <-ctx.Done():
		// A stop that races the router's start: wait until it runs, or
		// until Run gives up (its subscribe fails on the cancelled context).
		// A router whose Run already returned is not closed: its handler
		// never started, and Close would wait the whole CloseTimeout for it.
		select {
		case <-router.Running():
		case <-done:
			_ = sub.Close()
			return nil
		case <-time.After(routerCloseTimeout):
		}
		// Close the subscriber first: its closed channels end the handler.
		_ = sub.Close()
		_ = router.Close()
		select {
		case <-done:
		case <-time.After(routerCloseTimeout + time.Second):
			s.log.Warn("event router did not stop in time")
		}
		return nil
	}
}
