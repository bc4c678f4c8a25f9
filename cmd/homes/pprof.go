//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
)

// A profiling build (go build -tags pprof) serves net/http/pprof on
// loopback port 6060, apart from the API port, for the measurements of
// docs/scaling.md. Release builds carry none of it.
func init() {
	go func() {
		if err := http.ListenAndServe("127.0.0.1:6060", nil); err != nil {
			slog.Warn("pprof listener", "err", err)
		}
	}()
}
