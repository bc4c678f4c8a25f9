package main

import (
	"fmt"
	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/services/sender"
	"os"
	"strconv"
	"strings"
	"time"
)

// envVar documents one setting: its name, default and meaning. The README's
// configuration table lists the same.
type envVar struct {
	name, def, help string
}

// settings is every environment variable the binary reads.
var settings = []envVar{
	{"HOMES_SERVICES", "auth,home,sender", "which services this process runs (comma-separated: auth, home, sender, gateway; all = the first three)"},
	{"HOMES_ADDR", ":8080", "listen address of the one HTTP port"},
	{"DATABASE_URL", "", "PostgreSQL URL; when unset, 127.0.0.1:5432 or a private server in HOMES_DATA_DIR"},
	{"HOMES_DATA_DIR", ".data", "local data folder (private PostgreSQL, generated signing key)"},
	{"HOMES_MIGRATE", "true", "apply pending migrations at start"},
	{"HOMES_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"HOMES_DB_MAX_CONNS", "20", "largest number of open database connections"},
	{"HOMES_MAX_BODY_BYTES", "1048576", "largest request body accepted"},
	{"HOMES_MAX_INFLIGHT", "512", "requests served at once; more are answered 503 with Retry-After at once (load shedding); 0: no limit"},
	{"HOMES_SHUTDOWN_TIMEOUT", "20s", "time in-flight requests get on SIGTERM"},
	{"HOMES_JWT_PRIVATE_KEY", "", "Ed25519 signing key, PKCS#8 PEM (auth); overrides HOMES_JWT_KEY_FILE"},
	{"HOMES_JWT_KEY_FILE", "", "file with the signing key; default HOMES_DATA_DIR/jwt-ed25519.pem, created when missing"},
	{"HOMES_JWT_PUBLIC_KEY", "", "Ed25519 public key, PKIX PEM, to verify tokens when auth runs elsewhere"},
	{"HOMES_JWKS_URL", "", "auth's /.well-known/jwks.json, to verify tokens when auth runs elsewhere"},
	{"HOMES_JWT_ISSUER", "homes-auth", "iss claim of access tokens"},
	{"HOMES_JWT_AUDIENCE", "homes", "aud claim of access tokens"},
	{"HOMES_ACCESS_TOKEN_TTL", "15m", "lifetime of access tokens"},
	{"HOMES_REFRESH_TOKEN_TTL", "720h", "lifetime of refresh tokens"},
	{"HOMES_DUMMY_LOGIN", "true", "serve /dummyLogin (false: it answers 404)"},
	{"HOMES_BCRYPT_COST", "10", "bcrypt cost of password hashes"},
	{"HOMES_MAILER", "mock", "sender's mailer: mock (logs) or smtp"},
	{"SMTP_URL", "", "smtp://user:pass@host:port for HOMES_MAILER=smtp"},
	{"HOMES_MAIL_FROM", "homes@localhost", "From address of notifications"},
	{"HOMES_MOCK_MAX_LATENCY", "3s", "mock mailer: longest simulated send (uniformly random up to it)"},
	{"HOMES_MOCK_FAILURE_RATE", "0.1", "mock mailer: probability, 0..1, that a send fails"},
	{"HOMES_DELIVERY_MAX_ATTEMPTS", "10", "sender: send attempts before a delivery is marked failed (homes deliveries redrive re-queues it)"},
	{"HOMES_DELIVERY_BACKOFF_BASE", "1s", "sender: wait after the first failed attempt; it doubles with every further one (±25 % jitter)"},
	{"HOMES_DELIVERY_BACKOFF_MAX", "5m", "sender: longest wait between two attempts"},
	{"HOMES_ADMIN_ADDR", "", "separate listen address for /metrics, /healthz and /readyz; when unset /metrics is on HOMES_ADDR"},
	{"HOMES_CORS_ORIGINS", "*", "browser origins allowed to call (comma-separated; * any; none: no CORS headers)"},
	{"HOMES_AUTH_URL", "", "gateway: base URL of the auth service, e.g. http://auth:8080"},
	{"HOMES_HOME_URL", "", "gateway: base URL of the home service, e.g. http://home:8080"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP collector, e.g. http://otel-collector:4318; traces are exported only when this or the next is set (the other standard OTEL_EXPORTER_OTLP_* variables apply)"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "full OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces; wins over OTEL_EXPORTER_OTLP_ENDPOINT"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTLP protocol; only http/protobuf is built in (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL likewise)"},
	{"OTEL_TRACES_EXPORTER", "otlp", "otlp, or none to export no traces"},
	{"OTEL_SDK_DISABLED", "false", "true: export no traces whatever else is set"},
	{"OTEL_SERVICE_NAME", "", "service name in traces; default homes-<services>, e.g. homes-auth"},
}

// knownServices are the targets HOMES_SERVICES may name.
var knownServices = []string{"auth", "home", "sender", "gateway"}

// allServices are the targets of HOMES_SERVICES=all: the whole system in
// one process, which needs no gateway.
var allServices = []string{"auth", "home", "sender"}

// loadConfig reads the environment through getenv (os.Getenv in main).
func loadConfig(getenv func(string) string) (app.Config, error) {
	p := parser{getenv: getenv}
	c := app.Config{
		Addr:            p.str("HOMES_ADDR"),
		DatabaseURL:     p.str("DATABASE_URL"),
		DataDir:         p.str("HOMES_DATA_DIR"),
		Migrate:         p.boolean("HOMES_MIGRATE"),
		LogLevel:        p.str("HOMES_LOG_LEVEL"),
		DBMaxConns:      p.integer("HOMES_DB_MAX_CONNS"),
		MaxBodyBytes:    int64(p.integer("HOMES_MAX_BODY_BYTES")),
		MaxInFlight:     p.integer("HOMES_MAX_INFLIGHT"),
		ShutdownTimeout: p.duration("HOMES_SHUTDOWN_TIMEOUT"),
		JWTPrivateKey:   p.str("HOMES_JWT_PRIVATE_KEY"),
		JWTKeyFile:      p.str("HOMES_JWT_KEY_FILE"),
		JWTPublicKey:    p.str("HOMES_JWT_PUBLIC_KEY"),
		JWKSURL:         p.str("HOMES_JWKS_URL"),
		JWTIssuer:       p.str("HOMES_JWT_ISSUER"),
		JWTAudience:     p.str("HOMES_JWT_AUDIENCE"),
		AccessTokenTTL:  p.duration("HOMES_ACCESS_TOKEN_TTL"),
		RefreshTokenTTL: p.duration("HOMES_REFRESH_TOKEN_TTL"),
		DummyLogin:      p.boolean("HOMES_DUMMY_LOGIN"),
		BcryptCost:      p.integer("HOMES_BCRYPT_COST"),
		Mailer:          p.str("HOMES_MAILER"),
		SMTPURL:         p.str("SMTP_URL"),
		MailFrom:        p.str("HOMES_MAIL_FROM"),
		MockMaxLatency:  p.durationOrZero("HOMES_MOCK_MAX_LATENCY"),
		MockFailureRate: p.probability("HOMES_MOCK_FAILURE_RATE"),
		Services:        map[string]bool{},
		AdminAddr:       p.str("HOMES_ADMIN_ADDR"),
		CORSOrigins:     p.list("HOMES_CORS_ORIGINS"),
		AuthURL:         p.str("HOMES_AUTH_URL"),
		HomeURL:         p.str("HOMES_HOME_URL"),
		OTLPEndpoint:    p.otlpEndpoint(),
	}
	for _, name := range strings.Split(p.str("HOMES_SERVICES"), ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		if name == "all" {
			for _, k := range allServices {
				c.Services[k] = true
			}
			continue
		}
		if !contains(knownServices, name) {
			p.fail("HOMES_SERVICES", name, "one of "+strings.Join(knownServices, ", ")+" or all")
			continue
		}
		c.Services[name] = true
	}
	if len(c.Services) == 0 {
		p.fail("HOMES_SERVICES", "", "at least one service")
	}
	if c.Services["gateway"] {
		if c.AuthURL == "" {
			p.fail("HOMES_AUTH_URL", "", "auth's URL when HOMES_SERVICES has gateway")
		}
		if c.HomeURL == "" {
			p.fail("HOMES_HOME_URL", "", "home's URL when HOMES_SERVICES has gateway")
		}
	}
	if c.JWTKeyFile == "" {
		c.JWTKeyFile = c.DataDir + "/jwt-ed25519.pem"
	}
	if c.Mailer != "mock" && c.Mailer != "smtp" {
		p.fail("HOMES_MAILER", c.Mailer, "mock or smtp")
	}
	if c.Mailer == "smtp" && c.SMTPURL == "" && c.Services["sender"] {
		p.fail("SMTP_URL", "", "an smtp:// URL when HOMES_MAILER=smtp")
	}
	return c, p.err
}

// loadSenderConfig reads the sender's settings through getenv; the fields
// it does not set take sender.DefaultConfig's values in sender.New.
func loadSenderConfig(getenv func(string) string) (sender.Config, error) {
	p := parser{getenv: getenv}
	c := sender.Config{
		MaxAttempts: p.positive("HOMES_DELIVERY_MAX_ATTEMPTS"),
		BackoffBase: p.duration("HOMES_DELIVERY_BACKOFF_BASE"),
		BackoffMax:  p.duration("HOMES_DELIVERY_BACKOFF_MAX"),
	}
	if c.BackoffMax < c.BackoffBase {
		p.fail("HOMES_DELIVERY_BACKOFF_MAX", p.str("HOMES_DELIVERY_BACKOFF_MAX"), "at least HOMES_DELIVERY_BACKOFF_BASE")
	}
	return c, p.err
}

// otlpEndpoint is the OTLP traces endpoint in force under the standard
// OpenTelemetry variables, or "" when traces are not to be exported. The
// exporter reads the endpoint variables itself; this decides whether there
// is one, and refuses a protocol the binary does not have.
func (p *parser) otlpEndpoint() string {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := p.getenv(name); v != "" && v != "http/protobuf" {
			p.fail(name, v, "http/protobuf (the only OTLP protocol built in)")
		}
	}
	switch exporter := p.str("OTEL_TRACES_EXPORTER"); exporter {
	case "none":
		return ""
	case "otlp":
	default:
		p.fail("OTEL_TRACES_EXPORTER", exporter, "otlp or none")
	}
	if p.boolean("OTEL_SDK_DISABLED") {
		return ""
	}
	if v := p.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		return v
	}
	return p.str("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// list reads a comma-separated setting; "none" is the empty list.
func (p *parser) list(name string) []string {
	var out []string
	for _, v := range strings.Split(p.str(name), ",") {
		if v = strings.TrimSpace(v); v != "" && v != "none" {
			out = append(out, v)
		}
	}
	return out
}

type parser struct {
	getenv func(string) string
	err    error
}

func (p *parser) str(name string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	for _, s := range settings {
		if s.name == name {
			return s.def
		}
	}
	panic("undocumented setting " + name)
}

func (p *parser) fail(name, value, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s=%q: want %s", name, value, want)
	}
}

func (p *parser) integer(name string) int {
	v := p.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail(name, v, "a non-negative whole number")
	}
	return n
}

func (p *parser) positive(name string) int {
	v := p.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		p.fail(name, v, "a positive whole number")
	}
	return n
}

func (p *parser) boolean(name string) bool {
	v := p.str(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "true or false")
	}
	return b
}

func (p *parser) durationOrZero(name string) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, v, "a duration like 3s (0 for none)")
	}
	return d
}

func (p *parser) probability(name string) float64 {
	v := p.str(name)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		p.fail(name, v, "a number from 0 to 1")
	}
	return f
}

func (p *parser) duration(name string) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, "a positive duration like 15m")
	}
	return d
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// printSettings writes the configuration table (homes config).
func printSettings() {
	fmt.Println("| variable | default | meaning |")
	fmt.Println("|---|---|---|")
	for _, s := range settings {
		fmt.Printf("| `%s` | `%s` | %s |\n", s.name, s.def, s.help)
	}
	_ = os.Stdout.Sync()
}
