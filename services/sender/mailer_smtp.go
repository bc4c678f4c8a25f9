package sender

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTPMailer sends notifications through an SMTP server, one connection per
// message (connections are not shared between concurrent sends).
type SMTPMailer struct {
	client *mail.Client
	from   string
}

// smtpTimeout bounds the whole SMTP conversation of one message; go-mail
// honours the context only while dialling.
const smtpTimeout = 20 * time.Second

// NewSMTPMailer returns a mailer for rawURL, written
// smtp://[user:pass@]host[:port] (port 25 by default; STARTTLS when the server
// offers it, plain otherwise) or smtps://[user:pass@]host[:port] (TLS from the
// first byte, port 465 by default). With a user it authenticates with the best
// mechanism the server offers; credentials are only sent over TLS or to
// localhost. from is the sender address.
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse smtp url: %w", err)
	}
	if u.Hostname() == "" {
		return nil, errors.New("parse smtp url: no host")
	}
	if from == "" {
		return nil, errors.New("create smtp mailer: empty from address")
	}
	opts := []mail.Option{mail.WithTimeout(smtpTimeout)}
	port := 25
	switch u.Scheme {
	case "smtp":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "smtps":
		port = 465
		opts = append(opts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("parse smtp url: scheme %q is not smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("parse smtp url port: %w", err)
		}
	}
	opts = append(opts, mail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()),
			mail.WithPassword(pass))
	}
	client, err := mail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, fmt.Errorf("create smtp client: %w", err)
	}
	return &SMTPMailer{client: client, from: from}, nil
}

// Send delivers m over a new SMTP connection.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("set from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("set to: %w", err)
	}
	msg.Subject(m.Subject())
	msg.SetMessageIDWithValue(m.MessageID())
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.Body())
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send smtp: %w", err)
	}
	return nil
}
