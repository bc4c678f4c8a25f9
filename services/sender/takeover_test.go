package sender_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homeservices/homes/pkg/pg/pgtest"
	"github.com/homeservices/homes/services/sender"
)

// stubborn is a Mailer whose first send ignores its context and succeeds
// long after it, like an SMTP server that answers slowly; every later send
// fails at once.
type stubborn struct {
	first time.Duration
	tries atomic.Int32
}

func (m *stubborn) Send(context.Context, sender.Message) error {
	if m.tries.Add(1) == 1 {
		time.Sleep(m.first)
		return nil
	}
	return errors.New("451 try again later")
}

// TestSendThatOutlivesItsLeaseCounts: when a send outlives its lease, the
// delivery is claimed again; if the first send then turns out to have
// succeeded, the delivery is sent, whatever happened to the second one.
func TestSendThatOutlivesItsLeaseCounts(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	h := house(t, db, "Arbat 5", []string{"slow@example.com"})
	f, num := flat(t, db, h)

	m := &stubborn{first: 800 * time.Millisecond}
	cfg := fastConfig()
	cfg.SendTimeout, cfg.Lease = 100*time.Millisecond, 300*time.Millisecond
	cfg.MaxAttempts = 2 // the second attempt's failure fails the delivery
	s := newSender(t, cfg, db, m)
	start(t, s)
	publish(t, db, h, f, num, "Arbat 5", "on moderation", "approved", false)

	waitFor(t, 10*time.Second, "the taken-over attempt", func() bool { return m.tries.Load() >= 2 })
	// The second attempt's failure comes first and fails the delivery; the
	// first send's success, half a second later, must still count.
	waitFor(t, 5*time.Second, "the delivery to be sent", func() bool {
		st, err := s.Stats(context.Background())
		return err == nil && st.Sent == 1 && st.Failed == 0 && st.Pending == 0 && st.Sending == 0
	})
	if n := m.tries.Load(); n != 2 {
		t.Errorf("%d sends, want 2", n)
	}
}
