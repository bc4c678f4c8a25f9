package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTPMailer sends notifications through an SMTP server, one connection per
// message (connections are not shared between concurrent sends).
type SMTPMailer struct {
	host        string
	opts        []mail.Option
	tls         *tls.Config // of STARTTLS, and of smtps
	implicitTLS bool        // smtps: TLS from the first byte, opened by dial
	from        string
	log         *slog.Logger
}

// smtpTimeout is go-mail's connection deadline. go-mail arms it when
// dialling and again before the message, so it bounds no send: the send's
// context does (see dial). It remains a backstop for a context without a
// deadline.
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
	m := &SMTPMailer{
		host: u.Hostname(), from: from, log: slog.Default(),
		tls: &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
	}
	// With a dial function of its own, go-mail neither opens implicit TLS
	// (dial does, for smtps) nor counts it as encryption unless its TLS
	// policy looks at the connection: opportunistic does, and RFC 3207
	// forbids offering STARTTLS again inside TLS.
	opts := []mail.Option{mail.WithTimeout(smtpTimeout),
		mail.WithTLSPolicy(mail.TLSOpportunistic), mail.WithTLSConfig(m.tls)}
	port := 25
	switch u.Scheme {
	case "smtp":
	case "smtps":
		port = 465
		m.implicitTLS = true
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
	m.opts = opts
	if _, err := m.client(context.Background(), new(smtpConn)); err != nil {
		return nil, err
	}
	return m, nil
}

// smtpConn is the connection of one send.
type smtpConn struct {
	conn net.Conn
	stop func() bool // stops closing conn when the send's context ends
}

// close closes the connection, if one was dialled. go-mail leaves it open
// when QUIT fails.
func (c *smtpConn) close() {
	if c.conn != nil {
		c.stop()
		_ = c.conn.Close()
	}
}

// client returns a go-mail client for one send under ctx; the connection
// it dials goes to conn.
func (s *SMTPMailer) client(ctx context.Context, conn *smtpConn) (*mail.Client, error) {
	opts := append(s.opts[:len(s.opts):len(s.opts)], mail.WithDialContextFunc(s.dial(ctx, conn)))
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("create smtp client: %w", err)
	}
	return c, nil
}

// dial returns go-mail's dial function for a send under sendCtx. go-mail
// passes it a context of its own, which ends as soon as the dial returns,
// and it re-arms the connection's deadline before every command: neither
// bounds the conversation. Closing the connection when sendCtx ends does,
// wherever go-mail is blocked.
func (s *SMTPMailer) dial(sendCtx context.Context, conn *smtpConn) mail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn.conn = c
		conn.stop = context.AfterFunc(sendCtx, func() { _ = c.Close() })
		if !s.implicitTLS {
			return c, nil
		}
		tc := tls.Client(c, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return tc, nil
	}
}

// Send delivers m over a new SMTP connection. The connection lives no
// longer than ctx. Once the server has accepted the message, Send succeeds
// whatever happens to the rest of the conversation.
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
	var conn smtpConn
	client, err := s.client(ctx, &conn)
	if err != nil {
		return err
	}
	err = client.DialAndSendWithContext(ctx, msg)
	conn.close()
	switch {
	case msg.IsDelivered():
		if err != nil {
			// The RSET or QUIT after the message failed: the server has
			// the message, and a retry would mail it again.
			s.log.WarnContext(ctx, "smtp conversation failed after the message was accepted",
				"delivery_id", m.DeliveryID, "error", err)
		}
		return nil
	case err != nil && ctx.Err() != nil:
		// The connection was closed under go-mail: say why.
		return fmt.Errorf("send smtp: %w: %w", context.Cause(ctx), err)
	case err != nil:
		return fmt.Errorf("send smtp: %w", err)
	}
	return nil
}
