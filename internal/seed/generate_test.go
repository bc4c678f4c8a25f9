package seed

import "testing"

func TestPlanAddsUpAndIsSkewed(t *testing.T) {
	t.Parallel()
	cfg := Config{Flats: 200_000, Subscriptions: -1}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	houses := newGenerator(cfg).plan()
	var sum int64
	for _, n := range houses {
		if n < 1 || int(n) > cfg.MaxFlats {
			t.Fatalf("a house with %d flats", n)
		}
		sum += int64(n)
	}
	if sum != cfg.Flats {
		t.Fatalf("planned %d flats, want %d", sum, cfg.Flats)
	}
	q := quantiles(houses)
	if q["p50"] >= 80 || q["max"] < 10*q["p50"] {
		t.Fatalf("not skewed: %v", q)
	}
	if cfg.Subscriptions != 1_000 {
		t.Fatalf("default subscriptions %d, want flats/200", cfg.Subscriptions)
	}
}
