package sender

import (
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config tunes the sender. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// ConsumerGroup is the watermill consumer group of all sender
	// processes: each event is fanned out once per group. Default "sender".
	ConsumerGroup string
	// PollInterval is the fallback wait, for both new events and due
	// deliveries, when no NOTIFY arrives. Default 500 ms.
	PollInterval time.Duration
	// Concurrency is the number of emails in flight per process. Sends hold
	// no database connection. Default 64.
	Concurrency int
	// ClaimBatch is the most deliveries claimed in one statement. Default 32.
	ClaimBatch int
	// MaxAttempts is the number of send attempts before a delivery is
	// marked failed. Default 10.
	MaxAttempts int
	// BackoffBase is the wait after the first failed attempt; it doubles
	// with every further one (with jitter), up to BackoffMax.
	// Defaults 1 s and 5 min.
	BackoffBase time.Duration
	// BackoffMax caps the wait between two attempts.
	BackoffMax time.Duration
	// SendTimeout bounds one send attempt. Default 30 s.
	SendTimeout time.Duration
	// Lease is how long a claimed delivery belongs to its process; a
	// delivery still unrecorded after it (the process died) is claimed
	// again. Must exceed SendTimeout. Default SendTimeout + 30 s.
	Lease time.Duration
	// ShutdownGrace is how long Run lets in-flight sends finish once its
	// context ends; sends still running then are cancelled and their
	// deliveries handed back without using up an attempt. Default 5 s.
	ShutdownGrace time.Duration
	// StatsInterval is the period of the stats log line. Default 1 min.
	StatsInterval time.Duration
	// CleanupInterval is the period of the outbox cleanup. Default 10 min.
	CleanupInterval time.Duration
	// CleanupAge is how long consumed outbox events are kept. Default 24 h.
	CleanupAge time.Duration
	// TracerProvider makes the fan-out and send spans, which continue the
	// trace of the request that approved the flat (carried by the event and
	// stored on each delivery). Nil means no spans.
	TracerProvider trace.TracerProvider
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ConsumerGroup:   "sender",
		PollInterval:    500 * time.Millisecond,
		Concurrency:     64,
		ClaimBatch:      32,
		MaxAttempts:     10,
		BackoffBase:     time.Second,
		BackoffMax:      5 * time.Minute,
		SendTimeout:     30 * time.Second,
		ShutdownGrace:   5 * time.Second,
		StatsInterval:   time.Minute,
		CleanupInterval: 10 * time.Minute,
		CleanupAge:      24 * time.Hour,
	}
}

// withDefaults fills zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = d.ConsumerGroup
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.PollInterval, d.PollInterval)
	setInt(&c.Concurrency, d.Concurrency)
	setInt(&c.ClaimBatch, d.ClaimBatch)
	setInt(&c.MaxAttempts, d.MaxAttempts)
	setDur(&c.BackoffBase, d.BackoffBase)
	setDur(&c.BackoffMax, d.BackoffMax)
	setDur(&c.SendTimeout, d.SendTimeout)
	setDur(&c.Lease, c.SendTimeout+30*time.Second)
	setDur(&c.ShutdownGrace, d.ShutdownGrace)
	setDur(&c.StatsInterval, d.StatsInterval)
	setDur(&c.CleanupInterval, d.CleanupInterval)
	setDur(&c.CleanupAge, d.CleanupAge)
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	switch {
	case c.PollInterval < 0, c.BackoffBase < 0, c.BackoffMax < 0, c.SendTimeout < 0,
		c.ShutdownGrace < 0, c.StatsInterval < 0, c.CleanupInterval < 0, c.CleanupAge < 0:
		return c, errors.New("sender config: durations must not be negative")
	case c.Concurrency < 1, c.ClaimBatch < 1, c.MaxAttempts < 1:
		return c, errors.New("sender config: concurrency, claim batch and max attempts must be positive")
	case c.Lease <= c.SendTimeout:
		return c, errors.New("sender config: lease must exceed the send timeout")
	case c.BackoffMax < c.BackoffBase:
		return c, errors.New("sender config: backoff max must not be below backoff base")
	}
	return c, nil
}
