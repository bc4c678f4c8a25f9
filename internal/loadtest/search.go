package loadtest

import (
	"context"
	"fmt"
	"io"
)

// Search finds the highest constant arrival rate that meets slo: it runs
// cfg at start and multiplies the rate by 1.5 while the SLO holds, then
// halves the gap between the best passing and the first failing rate
// bisections times. It returns every step and the best passing rate (0 when
// even start fails). Each step is printed to w as it ends.
func (r *Runner) Search(ctx context.Context, cfg Config, slo SLO, start, bisections int, w io.Writer) (steps []*Result, best int, err error) {
	step := func(rate int) (bool, error) {
		c := cfg
		c.Rate, c.Workers = rate, 0
		res, err := r.Run(ctx, c, nil)
		if err != nil {
			return false, err
		}
		steps = append(steps, res)
		ok := res.Meets(slo)
		verdict := "FAILS"
		if ok {
			verdict = "meets"
		}
		_, _ = fmt.Fprintf(w, "rate %6d/s: achieved %8.1f/s, success %8.4f%%, p99 %7.2f ms, p99.9 %7.2f ms  %s the SLO (tool %.0f µs/req)\n",
			rate, res.Total.Rate, 100*res.Total.Success, res.Total.P99, res.Total.P999, verdict, float64(res.ToolCPUPerReq.Microseconds()))
		return ok, nil
	}
	lo, hi := 0, 0
	for rate := start; ; rate = rate * 3 / 2 {
		ok, err := step(rate)
		if err != nil {
			return steps, lo, err
		}
		if !ok {
			hi = rate
			break
		}
		lo = rate
	}
	for range bisections {
		mid := (lo + hi) / 2
		if lo == 0 {
			mid = hi / 2
		}
		if mid <= lo || mid >= hi || mid < 1 {
			break
		}
		ok, err := step(mid)
		if err != nil {
			return steps, lo, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return steps, lo, nil
}
