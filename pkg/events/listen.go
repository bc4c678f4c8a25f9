package events

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Listen holds one connection of db (which must be opened with pgx's stdlib
// driver, as pg.Open does), LISTENs on channels and calls fn with the
// channel of every notification, until ctx ends. A lost connection is
// replaced after a pause; after every (re)connect fn is called once per
// channel, since notifications sent meanwhile are lost and the caller should
// look for work. fn runs on Listen's goroutine and must not block.
func Listen(ctx context.Context, db *sql.DB, channels []string, fn func(channel string), log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		connected, err := listenOnce(ctx, db, channels, fn)
		if ctx.Err() != nil {
			return
		}
		if connected {
			pause = 100 * time.Millisecond
		}
		log.WarnContext(ctx, "listen for notifications", "channels", channels, "error", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// listenOnce runs one connection until it fails or ctx ends; connected
// tells whether LISTEN succeeded.
func listenOnce(ctx context.Context, db *sql.DB, channels []string, fn func(string)) (connected bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("get connection: %w", err)
	}
	defer func() { _ = conn.Close() }()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen: driver connection is %T, not pgx stdlib", dc)
		}
		pc := sc.Conn()
		for _, ch := range channels {
			// LISTEN takes no parameters; the channel is quoted as an identifier.
			if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return errors.Join(fmt.Errorf("listen %s: %w", ch, err), driver.ErrBadConn)
			}
		}
		connected = true
		for _, ch := range channels {
			fn(ch)
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection is LISTENing and maybe mid-read: never hand
				// it back to the pool.
				return errors.Join(fmt.Errorf("wait for notification: %w", err), driver.ErrBadConn)
			}
			fn(n.Channel)
		}
	})
	return connected, err
}
