package sender

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrMockFailure is the error of a send that the mock mailer chose to fail.
var ErrMockFailure = errors.New("mock mailer: simulated failure")

// MockConfig describes the mock mailer. The zero value sends instantly and
// never fails; ReferenceMockConfig is the domain's reference sender.
type MockConfig struct {
	// MaxLatency is the upper bound of the uniformly random time a send takes.
	MaxLatency time.Duration
	// FailureRate is the probability, 0..1, that a send fails.
	FailureRate float64
	// Rand is the source of randomness; nil means a randomly seeded one.
	Rand *rand.Rand
	// Log receives one line per message that would be sent; nil means the
	// default logger.
	Log *slog.Logger
}

// ReferenceMockConfig is the reference behaviour: up to 3 s per message,
// one failure in ten.
func ReferenceMockConfig() MockConfig {
	return MockConfig{MaxLatency: 3 * time.Second, FailureRate: 0.1}
}

// MockMailer pretends to send: it waits, sometimes fails, and logs what it
// would have sent.
type MockMailer struct {
	cfg MockConfig
	mu  sync.Mutex // guards cfg.Rand, which is not safe for concurrent use
}

// NewMockMailer returns a mock mailer behaving as cfg says.
func NewMockMailer(cfg MockConfig) *MockMailer {
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &MockMailer{cfg: cfg}
}

// Send waits a random latency, then fails with probability FailureRate or
// logs the message.
func (m *MockMailer) Send(ctx context.Context, msg Message) error {
	m.mu.Lock()
	var latency time.Duration
	if m.cfg.MaxLatency > 0 {
		latency = time.Duration(m.cfg.Rand.Int64N(int64(m.cfg.MaxLatency) + 1))
	}
	fail := m.cfg.Rand.Float64() < m.cfg.FailureRate
	m.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if fail {
		return ErrMockFailure
	}
	m.cfg.Log.InfoContext(ctx, "mock mailer: would send",
		"to", msg.To, "subject", msg.Subject(), "message_id", msg.MessageID(),
		"house_id", msg.HouseID, "flat_id", msg.FlatID, "rooms", msg.Rooms, "price", msg.Price)
	return nil
}
