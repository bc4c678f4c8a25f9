package apidocs_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/homeservices/homes/pkg/apidocs"
	"github.com/homeservices/homes/pkg/server"
)

// apiMD is the public contract, beside the repository as in CI.
const apiMD = "../../../shared/API.md"

// endpointRow matches a row of API.md's endpoint table: | GET `/house/{id}` |.
var endpointRow = regexp.MustCompile("(?m)^\\| (GET|POST|PUT|PATCH|DELETE) `([^`?]+)")

func TestSpecValidatesAndCoversAPIMD(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apidocs.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	contract, err := os.ReadFile(apiMD)
	if err != nil {
		t.Fatalf("read the contract: %v", err)
	}
	rows := endpointRow.FindAllStringSubmatch(string(contract), -1)
	if len(rows) < 8 {
		t.Fatalf("found only %d endpoints in API.md", len(rows))
	}
	for _, row := range rows {
		method, path := row[1], row[2]
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("openapi.yaml lacks %s %s", method, path)
		}
	}
	// The contract's snake_case field names.
	if _, ok := doc.Components.Schemas["Flat"].Value.Properties["house_id"]; !ok {
		t.Error("Flat has no house_id: the document is not in proto (snake_case) names")
	}
}

func TestSwaggerUIServedFromTheBinary(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.DefaultConfig(""), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, apidocs.Routes()...)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/docs"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/docs/" {
		t.Fatalf("/docs: %d %v", rec.Code, rec.Header())
	}
	page := get("/docs/")
	if page.Code != 200 || !strings.Contains(page.Body.String(), "swagger-ui-bundle.js") {
		t.Fatalf("/docs/: %d %s", page.Code, page.Body)
	}
	for path, want := range map[string]string{
		"/docs/swagger-ui-bundle.js":            "javascript",
		"/docs/swagger-ui-standalone-preset.js": "javascript",
		"/docs/swagger-ui.css":                  "text/css",
		"/docs/swagger-initializer.js":          "javascript",
		"/openapi.yaml":                         "yaml",
	} {
		rec := get(path)
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), want) || rec.Body.Len() == 0 {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	if !strings.Contains(get("/docs/swagger-initializer.js").Body.String(), `"/openapi.yaml"`) {
		t.Error("Swagger UI is not pointed at /openapi.yaml")
	}
	if rec := get("/docs/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("missing asset: %d", rec.Code)
	}
}
