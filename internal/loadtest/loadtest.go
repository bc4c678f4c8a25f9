// Package loadtest drives a running Home Services system over HTTP with
// vegeta: at a constant arrival rate (open model: a slow server does not
// slow the arrivals, so its latency is not hidden by back-pressure) or with
// a fixed number of busy workers (closed loop, for the highest throughput),
// with a realistic mix of the REST API's calls. It reports, per endpoint and
// in total, requests, achieved rate, success ratio and exact latency
// quantiles, plus its own CPU per request and the server's CPU and peak RSS.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// The endpoints of the mix. Each is a fragment of the target URL (never
// sent), so that a result says which kind of call it was.
const (
	EpGet      = "client GET /house/{id}"
	EpList     = "moderator GET /house/{id}"
	EpCreate   = "POST /flat/create"
	EpModerate = "POST /flat/update"
)

var endpoints = []string{EpGet, EpList, EpCreate, EpModerate}

// Mix is the relative weight of each kind of call.
type Mix struct {
	Get      int `json:"client_get_house"`    // a client lists a random house (approved flats)
	List     int `json:"moderator_get_house"` // a moderator lists a random house (every status)
	Create   int `json:"create_flat"`         // a client adds a flat to a random house
	Moderate int `json:"moderate_flat"`       // a moderator takes, then approves or declines, a flat created by this run
}

// ParseMix reads "get=90,list=4,create=3,moderate=3"; the presets "get"
// and "mixed" name the two standard mixes.
func ParseMix(s string) (Mix, error) {
	switch s {
	case "get":
		return Mix{Get: 1}, nil
	case "mixed", "":
		return Mix{Get: 90, List: 4, Create: 3, Moderate: 3}, nil
	}
	var m Mix
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("mix %q: want name=weight,... or get or mixed", s)
		}
		switch k {
		case "get":
			m.Get = n
		case "list":
			m.List = n
		case "create":
			m.Create = n
		case "moderate":
			m.Moderate = n
		default:
			return m, fmt.Errorf("mix %q: unknown call %q (get, list, create, moderate)", s, k)
		}
	}
	if m.Get+m.List+m.Create+m.Moderate == 0 {
		return m, fmt.Errorf("mix %q: all weights are zero", s)
	}
	return m, nil
}

// Config is one run.
type Config struct {
	BaseURL  string        `json:"base_url"`
	Houses   int           `json:"houses"`   // house ids 1..Houses exist
	Rate     int           `json:"rate"`     // arrivals per second (open model); 0 with Workers: closed loop
	Workers  int           `json:"workers"`  // closed loop: this many busy workers
	Duration time.Duration `json:"duration"` // length of the run
	Mix      Mix           `json:"mix"`
	Timeout  time.Duration `json:"timeout"`
	// ServerPID, when not 0, is the server's process: its CPU time and
	// peak RSS are read from /proc around the run.
	ServerPID int `json:"server_pid,omitempty"`
}

// SLO is what a run must meet: p99 at most P99, success at least Success.
type SLO struct {
	P99     time.Duration
	Success float64 // 0..1
}

// Stats are the figures of one endpoint, or of all.
type Stats struct {
	Endpoint string         `json:"endpoint"`
	Requests int            `json:"requests"`
	Rate     float64        `json:"rate"`    // achieved arrivals per second
	Success  float64        `json:"success"` // share of 2xx/3xx answers, 0..1
	P50      float64        `json:"p50_ms"`
	P90      float64        `json:"p90_ms"`
	P99      float64        `json:"p99_ms"`
	P999     float64        `json:"p99_9_ms"`
	Max      float64        `json:"max_ms"`
	Codes    map[string]int `json:"status_codes"`
	Errors   []string       `json:"errors,omitempty"` // distinct, at most 5
}

// Result is one run's outcome.
type Result struct {
	Config  Config    `json:"config"`
	Started time.Time `json:"started"`
	Stats   []Stats   `json:"endpoints"`
	Total   Stats     `json:"total"`
	// ToolCPUPerReq is the load tool's own CPU (user+system) per request;
	// ToolCores the cores it kept busy.
	ToolCPUPerReq time.Duration `json:"tool_cpu_per_request_ns"`
	ToolCores     float64       `json:"tool_cores"`
	Server        *ProcStats    `json:"server,omitempty"`
	Postgres      *ProcStats    `json:"postgres,omitempty"`
}

// Meets reports whether the run's total meets slo.
func (r *Result) Meets(slo SLO) bool {
	return r.Total.Requests > 0 && r.Total.P99 <= ms(slo.P99) && r.Total.Success >= slo.Success
}

// Runner runs loads against one system with one pair of tokens.
type Runner struct {
	base      string
	client    http.Header
	moderator http.Header
	http      *http.Client

	mu        sync.Mutex
	created   []int64 // flats this run created, not yet taken
	onModerat []int64 // flats this run took, not yet approved or declined
}

// NewRunner logs in at base through /dummyLogin as a client and a moderator.
// With gzip the calls ask for compressed answers, as browsers do; without
// it they ask for none, as wrk and service-to-service callers do.
func NewRunner(ctx context.Context, base string, gzip bool) (*Runner, error) {
	r := &Runner{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 10 * time.Second}}
	var err error
	if r.client, err = r.login(ctx, "client", gzip); err != nil {
		return nil, err
	}
	if r.moderator, err = r.login(ctx, "moderator", gzip); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Runner) login(ctx context.Context, role string, gzip bool) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/dummyLogin?user_type="+role, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("log in as %s: %w", role, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Token == "" {
		return nil, fmt.Errorf("log in as %s: status %d, %v", role, resp.StatusCode, err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+body.Token)
	h.Set("Content-Type", "application/json")
	if !gzip {
		// An explicit encoding also stops net/http from asking for gzip.
		h.Set("Accept-Encoding", "identity")
	}
	return h, nil
}

// targeter picks each call by the mix's weights.
func (r *Runner) targeter(cfg Config) vegeta.Targeter {
	m := cfg.Mix
	total := m.Get + m.List + m.Create + m.Moderate
	houses := max(cfg.Houses, 1)
	house := func() string { return strconv.Itoa(1 + rand.IntN(houses)) }
	return func(t *vegeta.Target) error {
		n := rand.IntN(total)
		switch {
		case n < m.Get:
			*t = vegeta.Target{Method: http.MethodGet, URL: r.base + "/house/" + house() + "#" + EpGet, Header: r.client}
		case n < m.Get+m.List:
			*t = vegeta.Target{Method: http.MethodGet, URL: r.base + "/house/" + house() + "#" + EpList, Header: r.moderator}
		case n >= m.Get+m.List+m.Create:
			if id, status, ok := r.nextModeration(); ok {
				*t = vegeta.Target{Method: http.MethodPost, URL: r.base + "/flat/update#" + EpModerate, Header: r.moderator,
					Body: fmt.Appendf(nil, `{"id":%d,"status":%q}`, id, status)}
				return nil
			}
			fallthrough // nothing to moderate yet: create one
		default:
			rooms := 1 + rand.IntN(5)
			*t = vegeta.Target{Method: http.MethodPost, URL: r.base + "/flat/create#" + EpCreate, Header: r.client,
				Body: fmt.Appendf(nil, `{"house_id":%s,"price":%d,"rooms":%d}`, house(), rooms*2_500_000+rand.IntN(2_000_000), rooms)}
		}
		return nil
	}
}

// nextModeration is the next step of the moderation of a flat this run
// created: approve or decline (4:1) one it holds, else take one.
func (r *Runner) nextModeration() (int64, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.onModerat); n > 0 {
		id := r.onModerat[n-1]
		r.onModerat = r.onModerat[:n-1]
		if rand.IntN(5) == 0 {
			return id, "declined", true
		}
		return id, "approved", true
	}
	if n := len(r.created); n > 0 {
		id := r.created[n-1]
		r.created = r.created[:n-1]
		return id, "on moderation", true
	}
	return 0, "", false
}

// observe feeds the moderation queues from the answers.
func (r *Runner) observe(ep string, res *vegeta.Result) {
	if res.Code != http.StatusOK || (ep != EpCreate && ep != EpModerate) {
		return
	}
	var f struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	if json.Unmarshal(res.Body, &f) != nil || f.ID == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case ep == EpCreate && len(r.created) < 100_000:
		r.created = append(r.created, f.ID)
	case ep == EpModerate && f.Status == "on moderation":
		r.onModerat = append(r.onModerat, f.ID)
	}
}

// EndpointOf reads the kind of call from the target URL's fragment.
func EndpointOf(res *vegeta.Result) string {
	if i := strings.LastIndexByte(res.URL, '#'); i >= 0 {
		return res.URL[i+1:]
	}
	return "other"
}

// Run runs one load as cfg says; p, when not nil, receives every result
// for the latency plot.
func (r *Runner) Run(ctx context.Context, cfg Config, p *plot.Plot) (*Result, error) {
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("duration must be > 0")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	opts := []func(*vegeta.Attacker){vegeta.Timeout(cfg.Timeout), vegeta.KeepAlive(true), vegeta.HTTP2(false)}
	pacer := vegeta.Pacer(vegeta.ConstantPacer{Freq: cfg.Rate, Per: time.Second})
	if cfg.Rate <= 0 {
		if cfg.Workers <= 0 {
			return nil, fmt.Errorf("set a rate (open model) or workers (closed loop)")
		}
		pacer = vegeta.ConstantPacer{} // as fast as the workers go
		opts = append(opts, vegeta.Workers(uint64(cfg.Workers)), vegeta.MaxWorkers(uint64(cfg.Workers)),
			vegeta.Connections(cfg.Workers))
	} else {
		opts = append(opts, vegeta.Workers(uint64(min(max(cfg.Rate/50, 10), 1000))), vegeta.Connections(10_000))
	}
	atk := vegeta.NewAttacker(opts...)
	type acc struct {
		lat     []time.Duration
		first   time.Time
		last    time.Time
		success int
		codes   map[string]int
		errs    []string
	}
	per := map[string]*acc{}
	serverBefore := readProc(cfg.ServerPID)
	pgBefore := readPostgres()
	cpuBefore := selfCPU()
	started := time.Now()
	results := atk.Attack(r.targeter(cfg), pacer, cfg.Duration, "homesload")
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	for res := range results {
		ep := EndpointOf(res)
		r.observe(ep, res)
		a := per[ep]
		if a == nil {
			a = &acc{codes: map[string]int{}, first: res.Timestamp}
			per[ep] = a
		}
		a.lat = append(a.lat, res.Latency)
		a.last = res.Timestamp
		a.codes[strconv.Itoa(int(res.Code))]++
		if res.Code >= 200 && res.Code < 400 && res.Error == "" {
			a.success++
		} else if len(a.errs) < 5 {
			e := res.Error
			if e == "" {
				e = fmt.Sprintf("%d %s", res.Code, bytes.TrimSpace(res.Body[:min(len(res.Body), 160)]))
			}
			if !slices.Contains(a.errs, e) {
				a.errs = append(a.errs, e)
			}
		}
		if p != nil {
			res.Body = nil
			if err := p.Add(res); err != nil {
				return nil, fmt.Errorf("plot: %w", err)
			}
		}
	}
	cpu := selfCPU() - cpuBefore
	wall := time.Since(started)
	out := &Result{Config: cfg, Started: started}
	var all acc
	all.codes = map[string]int{}
	for _, ep := range append(slices.Clone(endpoints), "other") {
		a := per[ep]
		if a == nil {
			continue
		}
		out.Stats = append(out.Stats, summarise(ep, a.lat, a.first, a.last, a.success, a.codes, a.errs))
		all.lat = append(all.lat, a.lat...)
		all.success += a.success
		for k, v := range a.codes {
			all.codes[k] += v
		}
		all.errs = append(all.errs, a.errs...)
		if all.first.IsZero() || a.first.Before(all.first) {
			all.first = a.first
		}
		if a.last.After(all.last) {
			all.last = a.last
		}
	}
	out.Total = summarise("total", all.lat, all.first, all.last, all.success, all.codes, all.errs[:min(len(all.errs), 5)])
	if n := out.Total.Requests; n > 0 {
		out.ToolCPUPerReq = cpu / time.Duration(n)
	}
	out.ToolCores = cpu.Seconds() / wall.Seconds()
	out.Server = readProc(cfg.ServerPID).since(serverBefore, wall, out.Total.Requests)
	out.Postgres = readPostgres().since(pgBefore, wall, out.Total.Requests)
	return out, ctx.Err()
}

func summarise(ep string, lat []time.Duration, first, last time.Time, success int, codes map[string]int, errs []string) Stats {
	s := Stats{Endpoint: ep, Requests: len(lat), Codes: codes, Errors: errs}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1 // nearest rank
		return ms(lat[min(max(i, 0), len(lat)-1)])
	}
	s.P50, s.P90, s.P99, s.P999, s.Max = q(0.5), q(0.9), q(0.99), q(0.999), ms(lat[len(lat)-1])
	if span := last.Sub(first).Seconds(); span > 0 && len(lat) > 1 {
		s.Rate = float64(len(lat)-1) / span
	}
	s.Success = float64(success) / float64(len(lat))
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PrintTable writes r as the table the tool prints.
func PrintTable(w io.Writer, r *Result) {
	mode := fmt.Sprintf("open model, %d req/s", r.Config.Rate)
	if r.Config.Rate <= 0 {
		mode = fmt.Sprintf("closed loop, %d workers", r.Config.Workers)
	}
	_, _ = fmt.Fprintf(w, "%s for %s against %s (%d houses)\n", mode, r.Config.Duration, r.Config.BaseURL, r.Config.Houses)
	_, _ = fmt.Fprintf(w, "%-26s %9s %9s %9s %8s %8s %8s %8s %8s\n", "endpoint", "requests", "rate/s", "success", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
	row := func(s Stats) {
		_, _ = fmt.Fprintf(w, "%-26s %9d %9.1f %8.3f%% %8.2f %8.2f %8.2f %8.2f %8.2f\n", s.Endpoint, s.Requests, s.Rate, 100*s.Success, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	for _, s := range r.Stats {
		row(s)
	}
	row(r.Total)
	_, _ = fmt.Fprintf(w, "status codes: %v\n", r.Total.Codes)
	for _, e := range r.Total.Errors {
		_, _ = fmt.Fprintf(w, "  error: %s\n", e)
	}
	_, _ = fmt.Fprintf(w, "load tool: %.1f µs CPU per request, %.2f cores\n", float64(r.ToolCPUPerReq.Nanoseconds())/1000, r.ToolCores)
	if s := r.Server; s != nil {
		_, _ = fmt.Fprintf(w, "server:    %.1f µs CPU per request, %.2f cores, RSS %.0f MiB, peak RSS %.0f MiB\n", s.CPUPerReqUS, s.Cores, s.RSSMiB, s.PeakRSSMiB)
	}
	if s := r.Postgres; s != nil {
		_, _ = fmt.Fprintf(w, "postgres:  %.1f µs CPU per request, %.2f cores (all postgres processes)\n", s.CPUPerReqUS, s.Cores)
	}
}
