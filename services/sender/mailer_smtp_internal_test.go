package sender

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// tlsInbox is an SMTP backend that counts the messages it got over TLS and
// in the clear.
type tlsInbox struct{ overTLS, plain atomic.Int32 }

func (b *tlsInbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &tlsSession{b: b, c: c}, nil
}

type tlsSession struct {
	b *tlsInbox
	c *smtp.Conn
}

func (s *tlsSession) Reset()                               {}
func (s *tlsSession) Logout() error                        { return nil }
func (s *tlsSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *tlsSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *tlsSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if _, ok := s.c.TLSConnectionState(); ok {
		s.b.overTLS.Add(1)
	} else {
		s.b.plain.Add(1)
	}
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestSMTPMailerTLS: smtps speaks TLS from the first byte (the mailer's own
// dial opens it) and smtp upgrades with STARTTLS when the server offers it.
func TestSMTPMailerTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	for _, scheme := range []string{"smtps", "smtp"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			b := &tlsInbox{}
			srv := smtp.NewServer(b)
			srv.Domain = "localhost"
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			if scheme == "smtps" {
				l = tls.NewListener(l, srv.TLSConfig)
			}
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(func() { _ = srv.Close() })

			m, err := NewSMTPMailer(scheme+"://"+addr, "notify@homes.example")
			if err != nil {
				t.Fatal(err)
			}
			m.tls.RootCAs = pool
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.Send(ctx, Message{DeliveryID: 1, To: "a@example.com", HouseAddress: "x"}); err != nil {
				t.Fatalf("send: %v", err)
			}
			if tlsN, plainN := b.overTLS.Load(), b.plain.Load(); tlsN != 1 || plainN != 0 {
				t.Errorf("server got %d messages over TLS and %d in the clear, want 1 and 0", tlsN, plainN)
			}
		})
	}
}
