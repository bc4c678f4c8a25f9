package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// RetryAfterSeconds is what every 5xx and 429 answer tells clients to wait.
const RetryAfterSeconds = 1

// ErrorBody is the JSON body of every REST error (API.md).
type ErrorBody struct {
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Code      int    `json:"code"`
}

// isRPC reports whether r speaks an RPC protocol (Connect, gRPC, gRPC-Web),
// whose clients expect that protocol's own error format.
func isRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/grpc") || strings.HasPrefix(ct, "application/connect+") {
		return true
	}
	if r.Header.Get("Connect-Protocol-Version") != "" {
		return true
	}
	// Connect unary calls (including GET) go to /pkg.Service/Method; no REST
	// path of API.md has a dot in its first segment.
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return strings.Contains(first, ".") && !strings.HasPrefix(first, ".")
}

// withErrorBody gives every non-RPC error response the body of API.md, and
// every 5xx and 429 (any protocol) a Retry-After header.
func withErrorBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorWriter{ResponseWriter: w, rest: !isRPC(r), requestID: RequestID(r.Context())}
		next.ServeHTTP(ew, r)
		ew.finish()
	})
}

type errorWriter struct {
	http.ResponseWriter
	rest      bool
	requestID string
	status    int
	buf       *bytes.Buffer // the original error body, when rewriting
}

func (w *errorWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if status >= 500 || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	if w.rest && status >= 400 {
		w.buf = &bytes.Buffer{}
		return // written in finish, with the rewritten body
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *errorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.buf != nil {
		return w.buf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes through, so streaming RPCs keep working.
func (w *errorWriter) Flush() {
	if w.buf != nil {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *errorWriter) finish() {
	if w.buf == nil {
		return
	}
	WriteError(w.ResponseWriter, w.status, messageOf(w.buf.Bytes(), w.status), w.requestID)
}

// WriteError writes the API.md error body with the given status.
func WriteError(w http.ResponseWriter, status int, message, requestID string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	if status >= 500 || status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Message: message, RequestID: requestID, Code: status})
}

// messageOf takes the message out of whatever error body the inner handler
// wrote (vanguard's google.rpc.Status JSON, or plain text).
func messageOf(body []byte, status int) string {
	var parsed struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &parsed) == nil && parsed.Message != "" {
		return parsed.Message
	}
	if s := strings.TrimSpace(string(body)); s != "" && len(s) < 512 && !strings.ContainsAny(s, "{<") {
		return s
	}
	if text := http.StatusText(status); text != "" {
		return strings.ToLower(text)
	}
	return "error"
}
