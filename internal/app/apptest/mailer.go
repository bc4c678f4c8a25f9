package apptest

import (
	"context"
	"sync"

	"github.com/homeservices/homes/services/sender"
)

// Mailbox is a mailer that records every message it is asked to send.
type Mailbox struct {
	mu   sync.Mutex
	sent []sender.Message
}

// Send implements sender.Mailer.
func (m *Mailbox) Send(_ context.Context, msg sender.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// Messages returns a copy of what was sent so far.
func (m *Mailbox) Messages() []sender.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sender.Message(nil), m.sent...)
}
