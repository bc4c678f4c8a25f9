// Package httpcache answers conditional GET requests: when a handler's 200
// answer carries an ETag that the request's If-None-Match names, the client
// gets 304 Not Modified with no body instead (RFC 9110 section 13.1.2).
// The handler still runs — it is what knows the current ETag (the home
// service's listings derive it from the house's version, read in the same
// round trip as the flats) — so what is saved is the body on the wire and
// the client's parsing of it, never freshness.
package httpcache

import (
	"net/http"
	"strings"
)

// Conditional wraps next so that GET and HEAD requests with If-None-Match
// are answered 304 when next's 200 answer has a matching ETag.
func Conditional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inm := r.Header.Get("If-None-Match")
		if inm == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		cw := &conditionalWriter{ResponseWriter: w, ifNoneMatch: inm}
		next.ServeHTTP(cw, r)
	})
}

// conditionalWriter turns a matching 200 into a 304 and drops its body.
type conditionalWriter struct {
	http.ResponseWriter
	ifNoneMatch string
	wrote       bool
	notModified bool
}

func (c *conditionalWriter) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote = true
	h := c.Header()
	if code == http.StatusOK && Matches(c.ifNoneMatch, h.Get("ETag")) {
		c.notModified = true
		// A 304 keeps the validators and caching headers, not the body's.
		for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Trailer"} {
			h.Del(k)
		}
		c.ResponseWriter.WriteHeader(http.StatusNotModified)
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *conditionalWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.notModified {
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

// Flush passes through, except for a 304, which has nothing to flush.
func (c *conditionalWriter) Flush() {
	if c.notModified {
		return
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *conditionalWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Matches reports whether an If-None-Match header value names etag, by the
// weak comparison that If-None-Match uses: W/"x" and "x" match.
func Matches(ifNoneMatch, etag string) bool {
	if etag == "" {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for _, candidate := range strings.Split(ifNoneMatch, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == etag {
			return true
		}
	}
	return false
}
