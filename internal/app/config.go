package app

import (
	"time"

	"github.com/homeservices/homes/services/sender"
)

// Config is the configuration of one process: which services it runs and
// how. main fills it from the environment (see cmd/homes/config.go).
type Config struct {
	Services        map[string]bool // the service targets to run: auth, home, sender
	Addr            string          // listen address
	DatabaseURL     string          // empty: find or start a local PostgreSQL
	DataDir         string          // local data (private PostgreSQL, signing key)
	Migrate         bool            // apply migrations at start
	LogLevel        string
	DBMaxConns      int
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration

	JWTPrivateKey   string
	JWTKeyFile      string
	JWTPublicKey    string
	JWKSURL         string
	JWTIssuer       string
	JWTAudience     string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	DummyLogin      bool
	BcryptCost      int

	Mailer          string
	SMTPURL         string
	MailFrom        string
	MockMaxLatency  time.Duration // mock mailer: longest simulated send
	MockFailureRate float64       // mock mailer: probability a send fails

	// MailerOverride, when set, replaces the configured mailer (tests).
	MailerOverride sender.Mailer
}
