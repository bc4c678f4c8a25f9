package httpcache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestConditional(t *testing.T) {
	t.Parallel()
	h := Conditional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `W/"h1.3.c"`)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		_, _ = w.Write([]byte(`{"flats":[]}`))
	}))
	cases := []struct {
		method, path, inm string
		status            int
		body              string
	}{
		{"GET", "/", "", 200, `{"flats":[]}`},
		{"GET", "/", `W/"h1.3.c"`, 304, ""},
		{"GET", "/", `"h1.3.c"`, 304, ""},
		{"GET", "/", `"x", W/"h1.3.c"`, 304, ""},
		{"GET", "/", `*`, 304, ""},
		{"GET", "/", `W/"h1.2.c"`, 200, `{"flats":[]}`},
		{"HEAD", "/", `W/"h1.3.c"`, 304, ""},
		{"POST", "/", `W/"h1.3.c"`, 200, `{"flats":[]}`},
		{"GET", "/missing", `W/"h1.3.c"`, 404, `{"flats":[]}`},
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.inm != "" {
			req.Header.Set("If-None-Match", c.inm)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status || rec.Body.String() != c.body {
			t.Errorf("%s %s If-None-Match %q: %d %q, want %d %q", c.method, c.path, c.inm, rec.Code, rec.Body, c.status, c.body)
		}
		if rec.Code == 304 && (rec.Header().Get("ETag") == "" || rec.Header().Get("Content-Type") != "") {
			t.Errorf("304 headers: %v", rec.Header())
		}
	}
}
