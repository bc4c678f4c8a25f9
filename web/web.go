// Package web serves the browser client of Home Services: the single-page
// app built by Vite from this folder (`task web`, i.e. npm ci && npm run
// build), embedded into the binary from dist/.
//
// dist/ is committed, so `go build` works on a fresh clone without Node.js;
// .ci/e2e rebuilds it and fails when the committed copy is stale.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Assets is the built app (the contents of dist/).
var Assets = func() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}()

// contentSecurityPolicy allows only this origin: the app's script and style
// come from /assets/, its RPCs go to the same origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Handler serves the app. Mount it on the paths the app uses, e.g.
// "GET /{$}" and "GET /assets/":
//
//   - / and any path that names no file: index.html (the app routes in the
//     URL fragment, but deep links still load it), never cached without
//     revalidation (Cache-Control: no-cache, with an ETag);
//   - /assets/...: the content-hashed bundles, cached for a year as
//     immutable; a missing asset is a 404, not index.html;
//   - other files of dist/: revalidated like index.html.
//
// Only GET and HEAD are answered.
func Handler() http.Handler {
	return handler{fsys: Assets}
}

type handler struct{ fsys fs.FS }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case name == "" || name == "index.html":
		h.serve(w, r, "index.html", "no-cache")
	case strings.HasPrefix(name, "assets/"):
		if !h.exists(name) {
			http.NotFound(w, r)
			return
		}
		h.serve(w, r, name, "public, max-age=31536000, immutable")
	case h.exists(name):
		h.serve(w, r, name, "no-cache")
	default:
		h.serve(w, r, "index.html", "no-cache")
	}
}

func (h handler) exists(name string) bool {
	st, err := fs.Stat(h.fsys, name)
	return err == nil && !st.IsDir()
}

// file is an embedded file read once, with its ETag.
type file struct {
	data []byte
	etag string
}

var (
	filesMu sync.Mutex
	files   = map[string]file{}
)

func (h handler) load(name string) (file, error) {
	filesMu.Lock()
	defer filesMu.Unlock()
	if f, ok := files[name]; ok {
		return f, nil
	}
	data, err := fs.ReadFile(h.fsys, name)
	if err != nil {
		return file{}, err
	}
	sum := sha256.Sum256(data)
	f := file{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	files[name] = f
	return f, nil
}

func (h handler) serve(w http.ResponseWriter, r *http.Request, name, cacheControl string) {
	f, err := h.load(name)
	if err != nil {
		// Only when dist/ lacks index.html: the build was not run.
		http.Error(w, "web app not built: run `task web`", http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", f.etag)
	if name == "index.html" {
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Content-Type", "text/html; charset=utf-8")
	}
	// ServeContent sets the Content-Type from the extension, answers
	// If-None-Match with 304 and handles Range.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
