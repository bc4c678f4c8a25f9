// Package apidocs serves the REST API's OpenAPI 3 document, generated from
// the protos by `buf generate` (gnostic's protoc-gen-openapi writes
// openapi.yaml here) and completed when the package loads (see Complete:
// response_body, the error body, validation limits, the bearer token), and
// Swagger UI from assets embedded in the binary, so the docs work offline.
// swagger-ui/ holds files of the npm package swagger-ui-dist (Apache-2.0,
// see swagger-ui/LICENSE), copied as they are.
package apidocs

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/homeservices/homes/pkg/server"
)

// SwaggerUIVersion is the swagger-ui-dist release vendored in swagger-ui/.
const SwaggerUIVersion = "5.35.0"

//go:embed openapi.yaml
var generated []byte

// spec is the served document: generated, completed.
var spec = mustComplete(generated)

func mustComplete(generated []byte) []byte {
	out, err := completed(generated)
	if err != nil {
		panic(err) // both inputs are fixed at build time; the tests load it
	}
	return out
}

//go:embed swagger-ui
var assets embed.FS

// Spec is the OpenAPI document (YAML) served at /openapi.yaml.
func Spec() []byte { return spec }

// Routes are the docs' endpoints: GET /openapi.yaml, GET /docs (Swagger UI)
// and GET /docs/<asset>. None clashes with a REST path of API.md.
func Routes() []server.Route {
	sub, err := fs.Sub(assets, "swagger-ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/docs/", http.FileServerFS(sub))
	return []server.Route{
		{Pattern: "GET /openapi.yaml", Handler: serveText("application/yaml", string(spec))},
		{Pattern: "GET /docs", Handler: http.RedirectHandler("/docs/", http.StatusMovedPermanently)},
		{Pattern: "GET /docs/{$}", Handler: serveText("text/html", index)},
		{Pattern: "GET /docs/swagger-initializer.js", Handler: serveText("text/javascript", initializer)},
		{Pattern: "GET /docs/", Handler: cached(files)},
	}
}

// index is Swagger UI's page, pointed at our document; the script is inline
// to keep the asset folder exactly as published.
const index = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Home Services API</title>
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
  <link rel="stylesheet" type="text/css" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
</body>
</html>
`

// initializer starts Swagger UI on /openapi.yaml (served as a file so that
// a strict Content-Security-Policy without inline scripts still works).
// validatorUrl null: unset, Swagger UI sends the document's URL to
// validator.swagger.io for a badge on every host but localhost, a third
// party the offline docs must not need (the tests validate the document).
const initializer = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
`

func serveText(contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType+"; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
}

// cached lets browsers keep the (versioned, immutable) assets for a day.
func cached(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		next.ServeHTTP(w, r)
	})
}
