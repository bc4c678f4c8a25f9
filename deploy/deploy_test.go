// Package deploy holds the deployment files (Prometheus, Grafana, the
// OpenTelemetry collector); its test checks them and compose.yaml without
// Docker, with the Compose specification's own loader.
package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("homes", true)
		o.Profiles = profiles
	})
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := load(t)
	names := p.ServiceNames()
	slices.Sort(names)
	want := []string{"auth", "gateway", "home", "mailpit", "migrate", "postgres", "sender"}
	if !slices.Equal(names, want) {
		t.Fatalf("default services %v, want %v", names, want)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	env := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}

	// One image for every target, each picking its services.
	for name, services := range map[string]string{"auth": "auth", "home": "home", "sender": "sender", "gateway": "gateway"} {
		s := svc(name)
		if s.Image != "homes:latest" || s.Build == nil || env(s, "HOMES_SERVICES") != services {
			t.Errorf("%s: image %q build %v HOMES_SERVICES %q", name, s.Image, s.Build, env(s, "HOMES_SERVICES"))
		}
		if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "/readyz") {
			t.Errorf("%s: healthcheck %v does not probe /readyz", name, s.HealthCheck)
		}
		if env(s, "HOMES_MIGRATE") != "false" {
			t.Errorf("%s migrates by itself; the migrate job should", name)
		}
		if _, ok := s.DependsOn["migrate"]; !ok && name != "gateway" {
			t.Errorf("%s does not wait for the migrations", name)
		}
	}
	if ports := svc("gateway").Ports; len(ports) != 1 || ports[0].Published != "8080" || ports[0].Target != 8080 {
		t.Errorf("gateway ports %v, want 8080:8080", ports)
	}
	for _, name := range []string{"auth", "home", "sender"} {
		if len(svc(name).Ports) != 0 {
			t.Errorf("%s publishes a port: only the gateway should", name)
		}
	}
	gw := svc("gateway")
	if env(gw, "HOMES_AUTH_URL") != "http://auth:8080" || env(gw, "HOMES_HOME_URL") != "http://home:8080" {
		t.Errorf("gateway upstreams: %v", gw.Environment)
	}
	// The gateway alone answers browsers; the services behind it send no
	// CORS headers ("none", cmd/homes's word for the empty list; the
	// default is "*").
	for _, name := range []string{"auth", "home", "sender"} {
		if v := env(svc(name), "HOMES_CORS_ORIGINS"); v != "none" {
			t.Errorf("%s: HOMES_CORS_ORIGINS %q, want none: only the gateway speaks CORS", name, v)
		}
	}
	if v := env(gw, "HOMES_CORS_ORIGINS"); v == "" || v == "none" {
		t.Errorf("gateway: HOMES_CORS_ORIGINS %q, want the browser origins", v)
	}
	for _, dep := range []string{"auth", "home"} {
		if gw.DependsOn[dep].Condition != types.ServiceConditionHealthy {
			t.Errorf("gateway does not wait for %s to be healthy", dep)
		}
	}
	if svc("home").DependsOn["auth"].Condition != types.ServiceConditionHealthy ||
		!strings.Contains(env(svc("home"), "HOMES_JWKS_URL"), "auth:8080/.well-known/jwks.json") {
		t.Error("home does not verify tokens with auth's JWKS")
	}

	pg := svc("postgres")
	if pg.HealthCheck == nil || len(pg.Volumes) == 0 || pg.Volumes[0].Target != "/var/lib/postgresql/data" {
		t.Errorf("postgres: healthcheck %v volumes %v", pg.HealthCheck, pg.Volumes)
	}
	mig := svc("migrate")
	if strings.Join(mig.Command, " ") != "migrate up" || mig.Restart != "no" ||
		mig.DependsOn["postgres"].Condition != types.ServiceConditionHealthy {
		t.Errorf("migrate: command %v restart %q depends %v", mig.Command, mig.Restart, mig.DependsOn)
	}
	for _, name := range []string{"auth", "home", "sender"} {
		if svc(name).DependsOn["migrate"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for the migrate job to finish", name)
		}
	}
	snd := svc("sender")
	if env(snd, "HOMES_MAILER") != "smtp" || env(snd, "SMTP_URL") != "smtp://mailpit:1025" {
		t.Errorf("sender mailer: %v", snd.Environment)
	}
	if snd.DependsOn["mailpit"].Condition != types.ServiceConditionHealthy || svc("mailpit").HealthCheck == nil {
		t.Error("sender does not wait for a healthy mailpit")
	}
	if len(svc("mailpit").Ports) == 0 {
		t.Error("mailpit's web UI is not published")
	}
}

func TestComposeObservabilityProfile(t *testing.T) {
	t.Parallel()
	p := load(t, "observability")
	for _, name := range []string{"otel-collector", "jaeger", "prometheus", "grafana"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("profile observability lacks %s", name)
		}
		if !slices.Contains(s.Profiles, "observability") {
			t.Errorf("%s is not limited to the observability profile", name)
		}
	}
	// Prometheus scrapes every service of the image.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, name := range []string{"auth", "home", "sender", "gateway"} {
		if !slices.Contains(targets, name+":8080") {
			t.Errorf("prometheus does not scrape %s", name)
		}
	}
	// The dashboard asks for the metrics the services export.
	raw, err := os.ReadFile("grafana/dashboards/homes.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	for _, metric := range []string{"homes_rpc_requests_total", "homes_rpc_duration_seconds_bucket",
		"histogram_quantile(0.99", "histogram_quantile(0.5", "homes_outbox_lag_seconds", "homes_deliveries"} {
		if !strings.Contains(string(raw), metric) {
			t.Errorf("dashboard lacks %s", metric)
		}
	}
	var otel map[string]any
	readYAML(t, "otel-collector.yaml", &otel)
	if otel["exporters"] == nil || otel["receivers"] == nil {
		t.Error("otel collector config lacks receivers or exporters")
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
