package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/homeservices/homes/services/sender"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || !c.Services["auth"] || !c.Services["home"] || !c.Services["sender"] ||
		!c.Migrate || !c.DummyLogin || c.AccessTokenTTL != 15*time.Minute || c.Mailer != "mock" ||
		c.JWTKeyFile != ".data/jwt-ed25519.pem" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestInvalidSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"HOMES_SERVICES":              "auth,billing",
		"HOMES_DB_MAX_CONNS":          "many",
		"HOMES_MIGRATE":               "perhaps",
		"HOMES_ACCESS_TOKEN_TTL":      "-5m",
		"HOMES_MAILER":                "carrier-pigeon",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_TRACES_EXPORTER":        "zipkin",
		"OTEL_SDK_DISABLED":           "maybe",
	}
	for name, value := range cases {
		_, err := loadConfig(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, value, err)
		}
	}
	c, err := loadConfig(env(map[string]string{"HOMES_SERVICES": "home", "HOMES_DUMMY_LOGIN": "false"}))
	if err != nil || c.Services["auth"] || !c.Services["home"] || c.DummyLogin {
		t.Fatalf("home only: %+v %v", c, err)
	}
}

// TestReadmeListsEverySetting keeps the operators' table true.
func TestReadmeListsEverySetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(readme), "`"+s.name+"`") {
			t.Errorf("README does not document %s", s.name)
		}
	}
}

func TestSenderSettings(t *testing.T) {
	t.Parallel()
	c, err := loadSenderConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := sender.DefaultConfig()
	if c.MaxAttempts != d.MaxAttempts || c.BackoffBase != d.BackoffBase || c.BackoffMax != d.BackoffMax {
		t.Errorf("documented defaults %+v differ from sender.DefaultConfig %+v", c, d)
	}
	c, err = loadSenderConfig(env(map[string]string{
		"HOMES_DELIVERY_MAX_ATTEMPTS": "3",
		"HOMES_DELIVERY_BACKOFF_BASE": "250ms",
		"HOMES_DELIVERY_BACKOFF_MAX":  "1m",
	}))
	if err != nil || c.MaxAttempts != 3 || c.BackoffBase != 250*time.Millisecond || c.BackoffMax != time.Minute {
		t.Errorf("set: %+v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		"zero attempts":     {map[string]string{"HOMES_DELIVERY_MAX_ATTEMPTS": "0"}, "HOMES_DELIVERY_MAX_ATTEMPTS"},
		"word for attempts": {map[string]string{"HOMES_DELIVERY_MAX_ATTEMPTS": "ten"}, "HOMES_DELIVERY_MAX_ATTEMPTS"},
		"negative base":     {map[string]string{"HOMES_DELIVERY_BACKOFF_BASE": "-1s"}, "HOMES_DELIVERY_BACKOFF_BASE"},
		"bare number max":   {map[string]string{"HOMES_DELIVERY_BACKOFF_MAX": "300"}, "HOMES_DELIVERY_BACKOFF_MAX"},
		"max below base": {
			map[string]string{"HOMES_DELIVERY_BACKOFF_BASE": "1m", "HOMES_DELIVERY_BACKOFF_MAX": "10s"},
			"HOMES_DELIVERY_BACKOFF_MAX",
		},
	} {
		if _, err := loadSenderConfig(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v does not name %s", name, err, tc.want)
		}
	}
}

// TestTraceExportSettings: the standard OpenTelemetry variables decide
// whether traces leave the process.
func TestTraceExportSettings(t *testing.T) {
	t.Parallel()
	const base, traces = "http://collector:4318", "http://collector:4318/v1/traces"
	cases := []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base}, base},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces}, traces},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces}, traces},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, base},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_TRACES_EXPORTER": "none"}, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_SDK_DISABLED": "true"}, ""},
	}
	for _, c := range cases {
		cfg, err := loadConfig(env(c.env))
		if err != nil || cfg.OTLPEndpoint != c.want {
			t.Errorf("%v: endpoint %q, err %v; want %q", c.env, cfg.OTLPEndpoint, err, c.want)
		}
	}
}
