package app

import (
	"fmt"

	"github.com/homeservices/homes/pkg/events"
	"github.com/homeservices/homes/services/home"
	"github.com/homeservices/homes/services/sender"
)

// homeOptions wires the home service's flat-change hook to the outbox: every
// flat event is written in the transaction of the change it reports.
func (a *App) homeOptions() []home.Option {
	return []home.Option{home.WithFlatChangeHook(events.NewOutbox(a.log).Publish)}
}

// buildWorkers adds the background workers of the chosen services.
func (a *App) buildWorkers() error {
	if !a.cfg.Services["sender"] {
		return nil
	}
	mailer, err := a.mailer()
	if err != nil {
		return err
	}
	cfg := a.cfg.Sender
	cfg.TracerProvider = a.tel.TracerProvider()
	snd, err := sender.New(cfg, a.db, mailer, a.log)
	if err != nil {
		return fmt.Errorf("build sender: %w", err)
	}
	a.sender = snd
	a.workers = append(a.workers, snd.Run)
	return nil
}

func (a *App) mailer() (sender.Mailer, error) {
	if a.cfg.MailerOverride != nil {
		return a.cfg.MailerOverride, nil
	}
	switch a.cfg.Mailer {
	case "smtp":
		m, err := sender.NewSMTPMailer(a.cfg.SMTPURL, a.cfg.MailFrom)
		if err != nil {
			return nil, fmt.Errorf("build smtp mailer: %w", err)
		}
		return m, nil
	case "mock", "":
		return sender.NewMockMailer(sender.MockConfig{
			MaxLatency:  a.cfg.MockMaxLatency,
			FailureRate: a.cfg.MockFailureRate,
			Log:         a.log,
		}), nil
	default:
		return nil, fmt.Errorf("unknown mailer %q", a.cfg.Mailer)
	}
}

// Sender is the process's sender, nil when it does not run one.
func (a *App) Sender() *sender.Sender { return a.sender }
