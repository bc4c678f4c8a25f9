package main

import (
	"os"
	"strings"
	"testing"
	"time"
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
		"HOMES_SERVICES":         "auth,billing",
		"HOMES_DB_MAX_CONNS":     "many",
		"HOMES_MIGRATE":          "perhaps",
		"HOMES_ACCESS_TOKEN_TTL": "-5m",
		"HOMES_MAILER":           "carrier-pigeon",
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
