package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	files = map[string]file{} // the cache is keyed by name only
	t.Cleanup(func() { files = map[string]file{} })
	h := handler{fsys: fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><title>app</title>")},
		"assets/index-ab.js": {Data: []byte("console.log(1)")},
		"robots.txt":         {Data: []byte("User-agent: *")},
	}}
	cases := []struct {
		name, method, path string
		status             int
		cache, ctype, body string
	}{
		{"root", "GET", "/", 200, "no-cache", "text/html; charset=utf-8", "<title>app</title>"},
		{"index", "GET", "/index.html", 200, "no-cache", "text/html; charset=utf-8", "<title>app</title>"},
		{"fallback", "GET", "/house/7", 200, "no-cache", "text/html; charset=utf-8", "<title>app</title>"},
		{"asset", "GET", "/assets/index-ab.js", 200, "public, max-age=31536000, immutable", "text/javascript; charset=utf-8", "console.log(1)"},
		{"missing asset", "GET", "/assets/gone.js", 404, "", "", ""},
		{"other file", "GET", "/robots.txt", 200, "no-cache", "text/plain; charset=utf-8", "User-agent"},
		{"head", "HEAD", "/", 200, "no-cache", "text/html; charset=utf-8", ""},
		{"post", "POST", "/", 405, "", "", ""},
		{"dot dot", "GET", "/assets/../index.html", 200, "no-cache", "text/html; charset=utf-8", "<title>app</title>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := get(t, h, c.method, c.path, nil)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if got := w.Header().Get("Cache-Control"); got != c.cache {
				t.Errorf("Cache-Control %q, want %q", got, c.cache)
			}
			if c.ctype != "" && w.Header().Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), c.ctype)
			}
			if !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("body %q lacks %q", w.Body.String(), c.body)
			}
			if c.status == 200 && w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}

	t.Run("etag revalidation", func(t *testing.T) {
		w := get(t, h, "GET", "/", nil)
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			t.Error("index.html without Content-Security-Policy")
		}
		w = get(t, h, "GET", "/", map[string]string{"If-None-Match": etag})
		if w.Code != http.StatusNotModified {
			t.Fatalf("status %d, want 304", w.Code)
		}
	})
}

// TestEmbeddedBuild checks the committed build: index.html exists and every
// asset it references is embedded and served as immutable.
func TestEmbeddedBuild(t *testing.T) {
	index, err := fs.ReadFile(Assets, "index.html")
	if err != nil {
		t.Fatalf("dist/index.html missing (run `task web`): %v", err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) == 0 {
		t.Fatalf("index.html references no assets:\n%s", index)
	}
	h := Handler()
	for _, m := range refs {
		w := get(t, h, "GET", "/"+m[1], nil)
		if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("/%s: status %d, Cache-Control %q", m[1], w.Code, w.Header().Get("Cache-Control"))
		}
	}
}
