package sender_test

import (
	"context"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/homeservices/homes/pkg/pg/pgtest"

	"github.com/homeservices/homes/services/sender"
)

// inbox is an in-process SMTP server on loopback that keeps what it gets.
type inbox struct {
	mu   sync.Mutex
	mail []received
}

type received struct {
	from string
	to   []string
	data []byte
}

func (ib *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{ib: ib}, nil }

func (ib *inbox) all() []received {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return append([]received(nil), ib.mail...)
}

type session struct {
	ib  *inbox
	cur received
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.ib.mu.Lock()
	s.ib.mail = append(s.ib.mail, s.cur)
	s.ib.mu.Unlock()
	return nil
}

// startSMTP serves an inbox on 127.0.0.1 and returns it and its address.
func startSMTP(t *testing.T) (*inbox, string) {
	t.Helper()
	ib := &inbox{}
	srv := smtp.NewServer(ib)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ib, l.Addr().String()
}

func TestSMTPMailerDeliversToARealServer(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	subs := emails("smtp", 3)
	h := house(t, db, "Kutuzovsky 11", subs)
	f, num := flat(t, db, h)

	ib, addr := startSMTP(t)
	mailer, err := sender.NewSMTPMailer("smtp://"+addr, "notify@homes.example")
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, fastConfig(), db, mailer)
	start(t, s)
	publish(t, db, h, f, num, "Kutuzovsky 11", "on moderation", "approved", false)

	waitFor(t, 10*time.Second, "three emails", func() bool { return len(ib.all()) >= 3 })
	waitFor(t, 10*time.Second, "sender to settle", settled(t, s))
	got := map[string]int{}
	for _, m := range ib.all() {
		if m.from != "notify@homes.example" || len(m.to) != 1 {
			t.Errorf("envelope from %q to %v", m.from, m.to)
			continue
		}
		got[m.to[0]]++
		msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
		if err != nil {
			t.Fatalf("parse email: %v", err)
		}
		body, _ := io.ReadAll(msg.Body)
		if subj := msg.Header.Get("Subject"); !strings.Contains(subj, "Kutuzovsky 11") {
			t.Errorf("subject %q", subj)
		}
		if id := msg.Header.Get("Message-Id"); !strings.Contains(id, "flat-") {
			t.Errorf("message id %q", id)
		}
		for _, want := range []string{"Kutuzovsky 11", "No. 1", "Rooms:  3", "Price:  5000000"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("body lacks %q:\n%s", want, body)
			}
		}
	}
	assertOnce(t, got, subs)
	assertOnce(t, sentRows(t, db, f), subs)
}

func TestSMTPMailerURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"smtp://localhost:2525",
		"smtp://user:secret@mail.example.com:587",
		"smtps://user:secret@mail.example.com",
		"smtp://mail.example.com",
	} {
		if _, err := sender.NewSMTPMailer(u, "a@example.com"); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://mail.example.com", "smtp://", "smtp://host:port", "::"} {
		if _, err := sender.NewSMTPMailer(u, "a@example.com"); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
	if _, err := sender.NewSMTPMailer("smtp://localhost", ""); err == nil {
		t.Error("empty from accepted")
	}
}

func TestSMTPMailerReportsAnUnreachableServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	m, err := sender.NewSMTPMailer("smtp://"+addr, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Send(ctx, sender.Message{To: "b@example.com", HouseAddress: "x"}); err == nil {
		t.Error("send to a closed port succeeded")
	}
}
