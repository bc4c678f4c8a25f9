package app

import (
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/homeservices/homes/services/sender"
)

// Config is the configuration of one process: which services it runs and
// how. main fills it from the environment (see cmd/homes/config.go).
type Config struct {
	Services        map[string]bool // the service targets to run: auth, home, sender, gateway
	Addr            string          // listen address
	DatabaseURL     string          // empty: find or start a local PostgreSQL
	DataDir         string          // local data (private PostgreSQL, signing key)
	Migrate         bool            // apply migrations at start
	LogLevel        string
	DBMaxConns      int
	MaxBodyBytes    int64
	MaxInFlight     int // requests served at once, more are shed with 503; 0: no limit
	ShutdownTimeout time.Duration
	AdminAddr       string   // separate port for /metrics (and health); empty: the service port
	CORSOrigins     []string // browser origins allowed to call ("*": any); empty: no CORS
	OTLPEndpoint    string   // OTLP/HTTP collector; empty: spans are not exported

	AuthURL string // gateway: base URL of the auth service
	HomeURL string // gateway: base URL of the home service

	// SpanExporter, when set, receives every span (tests use an in-memory
	// exporter); it takes precedence over OTLPEndpoint.
	SpanExporter sdktrace.SpanExporter

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

	// Sender tunes the sender; zero fields take sender.DefaultConfig's
	// values, and the App sets its TracerProvider.
	Sender sender.Config

	// MailerOverride, when set, replaces the configured mailer (tests).
	MailerOverride sender.Mailer
}
