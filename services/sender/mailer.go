package sender

import (
	"context"
	"fmt"
)

// Mailer delivers one notification. A nil error means the message was
// handed over (the sender then records it sent, once); any error is retried
// later. Send must honour ctx.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Message is one notification: a flat of a house the recipient subscribed
// to was approved.
type Message struct {
	// DeliveryID identifies the delivery row; it makes the Message-ID, so a
	// resend after a crash can be recognised by the receiver.
	DeliveryID   int64
	To           string
	HouseID      int32
	HouseAddress string
	FlatID       int32
	FlatNumber   int32
	Rooms        int32
	Price        int32
}

// Subject is the subject line of the email.
func (m Message) Subject() string {
	return fmt.Sprintf("New flat No. %d at %s", m.FlatNumber, m.HouseAddress)
}

// Body is the plain-text body of the email.
func (m Message) Body() string {
	return fmt.Sprintf("Hello,\n\n"+
		"a new flat is available in the house you follow.\n\n"+
		"House:  %s (house id %d)\n"+
		"Flat:   No. %d (flat id %d)\n"+
		"Rooms:  %d\n"+
		"Price:  %d\n\n"+
		"You receive this email because you subscribed to updates of this house.\n",
		m.HouseAddress, m.HouseID, m.FlatNumber, m.FlatID, m.Rooms, m.Price)
}

// MessageID is the globally unique id of the email, stable across resends.
func (m Message) MessageID() string {
	return fmt.Sprintf("delivery-%d.flat-%d@homes.notifications", m.DeliveryID, m.FlatID)
}
