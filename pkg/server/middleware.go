package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// withBodyLimit caps every request body, whatever the protocol.
func withBodyLimit(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			WriteError(w, http.StatusRequestEntityTooLarge, "request body too large", RequestID(r.Context()))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// withRecover turns a panic outside the Connect handlers into a 500 with the
// contract's body; the panic goes to the log, not to the client.
func withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				slog.ErrorContext(r.Context(), "panic", "panic", p, "request_id", RequestID(r.Context()))
				WriteError(w, http.StatusInternalServerError, "internal server error", RequestID(r.Context()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withAccessLog writes one line per request: what was asked (method, path,
// protocol, procedure), how it ended (HTTP status, RPC code), how long it
// took, and the ids to search by (request id, trace id). Never headers,
// query strings or bodies: they carry tokens and passwords.
func withAccessLog(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path, protocol := r.URL.Path, protocolOf(r) // the transcoder rewrites r
		ctx, ci := withCallInfo(r.Context())
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK // nothing written: net/http answers 200
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		attrs := append([]slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.String("protocol", protocol),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", RequestID(r.Context())),
		}, ci.logAttrs()...)
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

func protocolOf(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch {
	case len(ct) >= 20 && ct[:20] == "application/grpc-web":
		return "grpc-web"
	case len(ct) >= 16 && ct[:16] == "application/grpc":
		return "grpc"
	case isRPC(r):
		return "connect"
	default:
		return "rest"
	}
}

// withContentTypeDefaults lets plain JSON clients (curl -d, scripts) omit
// headers: a REST body without a JSON content type is read as JSON, and a
// unary POST to an RPC path without Connect-Protocol-Version is a Connect
// call, as the Connect protocol says.
func withContentTypeDefaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if isRPC(r) {
			if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
				(ct == "application/json" || ct == "application/proto" || strings.HasPrefix(ct, "application/json;")) {
				r.Header.Set("Connect-Protocol-Version", "1")
			}
		} else if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			(ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "text/plain")) {
			r.Header.Set("Content-Type", "application/json")
		}
		next.ServeHTTP(w, r)
	})
}
