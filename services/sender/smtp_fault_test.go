package sender_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homeservices/homes/services/sender"
)

// fault is where a scriptedSMTP server misbehaves.
type fault int

const (
	noFault        fault = iota
	hangUpAfterOK        // accept the message, then hang up before RSET or QUIT are answered
	rejectReset          // accept the message, then refuse RSET
	rejectQuit           // accept the message, then refuse QUIT
	rejectData           // refuse the message after its final dot
	stallGreeting        // never send the 220 greeting
	stallAfterRcpt       // never answer DATA
	stallAfterData       // never answer the final dot
)

// scriptedSMTP is a loopback SMTP server for the failures go-smtp will not
// produce: it speaks just enough of the protocol for go-mail and
// misbehaves as its fault says.
type scriptedSMTP struct {
	fault    fault
	accepted atomic.Int32  // messages answered 250 after their dot
	hungUp   chan struct{} // closed when a client hangs up on a stalled server

	mu    sync.Mutex
	conns []net.Conn
}

// startScripted serves a scriptedSMTP on 127.0.0.1 and returns it and its
// address.
func startScripted(t *testing.T, f fault) (*scriptedSMTP, string) {
	t.Helper()
	s := &scriptedSMTP{fault: f, hungUp: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			_ = c.Close()
		}
	})
	return s, l.Addr().String()
}

// stall answers nothing more and waits for the client to hang up.
func (s *scriptedSMTP) stall(r io.Reader) {
	_, _ = io.Copy(io.Discard, r)
	select {
	case <-s.hungUp:
	default:
		close(s.hungUp)
	}
}

func (s *scriptedSMTP) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = io.WriteString(c, line+"\r\n") }
	if s.fault == stallGreeting {
		s.stall(r)
		return
	}
	say("220 localhost ESMTP scripted")
	delivered := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			say("250-localhost")
			say("250 8BITMIME")
		case "HELO", "MAIL", "RCPT", "NOOP":
			say("250 ok")
		case "RSET":
			if delivered && s.fault == hangUpAfterOK {
				return
			}
			if delivered && s.fault == rejectReset {
				say("421 closing")
				return
			}
			say("250 ok")
		case "DATA":
			if s.fault == stallAfterRcpt {
				s.stall(r)
				return
			}
			say("354 go ahead")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			switch s.fault {
			case stallAfterData:
				s.stall(r)
				return
			case rejectData:
				say("554 rejected")
				continue
			}
			s.accepted.Add(1)
			delivered = true
			say("250 queued")
		case "QUIT":
			if s.fault == rejectQuit {
				say("500 no")
				return
			}
			say("221 bye")
			return
		default:
			say("500 unknown command")
		}
	}
}

// TestSMTPMailerAcceptedMessageIsSent: once the server has answered 250 to
// the message, trouble with the RSET or QUIT after it must not turn the
// send into a failure, or the sender would mail the recipient again.
func TestSMTPMailerAcceptedMessageIsSent(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fault   fault
		wantErr bool
	}{
		"clean":                      {fault: noFault},
		"hang-up after the message":  {fault: hangUpAfterOK},
		"RSET refused after message": {fault: rejectReset},
		"QUIT refused after message": {fault: rejectQuit},
		"message refused":            {fault: rejectData, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, addr := startScripted(t, tc.fault)
			m, err := sender.NewSMTPMailer("smtp://"+addr, "notify@homes.example")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = m.Send(ctx, sender.Message{DeliveryID: 1, To: "a@example.com", HouseAddress: "x"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("send: %v, want error: %v", err, tc.wantErr)
			}
			want := int32(1)
			if tc.wantErr {
				want = 0
			}
			if got := srv.accepted.Load(); got != want {
				t.Errorf("server accepted %d messages, want %d", got, want)
			}
		})
	}
}

// TestSMTPMailerHonoursTheContext: the send's context bounds the whole
// SMTP conversation, not only the dial, so a send cannot outlive its lease
// or hold up a shutdown.
func TestSMTPMailerHonoursTheContext(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fault  fault
		cancel bool // cancel the context instead of letting it time out
		want   error
	}{
		"stalled greeting":       {fault: stallGreeting, want: context.DeadlineExceeded},
		"stalled after RCPT":     {fault: stallAfterRcpt, want: context.DeadlineExceeded},
		"stalled after DATA":     {fault: stallAfterData, want: context.DeadlineExceeded},
		"cancelled after DATA":   {fault: stallAfterData, cancel: true, want: context.Canceled},
		"cancelled before reply": {fault: stallGreeting, cancel: true, want: context.Canceled},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, addr := startScripted(t, tc.fault)
			m, err := sender.NewSMTPMailer("smtp://"+addr, "notify@homes.example")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tc.cancel {
				ctx, cancel = context.WithCancel(context.Background())
				defer cancel()
				time.AfterFunc(300*time.Millisecond, cancel)
			}
			began := time.Now()
			err = m.Send(ctx, sender.Message{DeliveryID: 1, To: "a@example.com", HouseAddress: "x"})
			took := time.Since(began)
			if !errors.Is(err, tc.want) {
				t.Errorf("send: %v, want %v", err, tc.want)
			}
			if took > time.Second {
				t.Errorf("send took %s with a 300 ms context", took)
			}
			select {
			case <-srv.hungUp:
			case <-time.After(time.Second):
				t.Error("the connection stayed open after the send gave up")
			}
			if n := srv.accepted.Load(); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}
