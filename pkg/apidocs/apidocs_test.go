package apidocs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/homeservices/homes/pkg/apidocs"
	"github.com/homeservices/homes/pkg/server"
)

// apiMD is the repository's copy of the public contract, so that the tests
// run in any clone; sharedAPIMD is the contract itself, beside the
// repository where CI lays it, which the copy must equal.
const (
	apiMD       = "../../docs/API.md"
	sharedAPIMD = "../../../shared/API.md"
)

// TestContractCopyIsCurrent: docs/API.md is exactly the shared contract.
func TestContractCopyIsCurrent(t *testing.T) {
	t.Parallel()
	shared, err := os.ReadFile(sharedAPIMD)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s is not beside this clone (CI lays it there): docs/API.md not compared", sharedAPIMD)
	}
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(apiMD)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, copied) {
		t.Fatalf("docs/API.md differs from %s: copy the contract again (cp %s docs/API.md)", sharedAPIMD, "../shared/API.md")
	}
}

// endpointRow matches a row of API.md's endpoint table: | GET `/house/{id}` |
// and its "who" column: | client or moderator |.
var endpointRow = regexp.MustCompile("(?m)^\\| (GET|POST|PUT|PATCH|DELETE) `([^`?]+)[^`]*` \\| ([^|]*) \\|")

func TestSpecValidatesAndCoversAPIMD(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
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

// TestSpecBearerToken: the document has the bearer token's security scheme,
// so Swagger UI offers Authorize, and exactly the operations that need a
// token require it: those of the home service, which API.md opens to a role,
// not those of the auth service, which API.md opens to anyone (or does not
// list: /refresh and /logout take a refresh token in the body).
func TestSpecBearerToken(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	ref := doc.Components.SecuritySchemes["bearerAuth"]
	if ref == nil || ref.Value == nil {
		t.Fatalf("no security scheme bearerAuth in %v", slices.Sorted(maps.Keys(doc.Components.SecuritySchemes)))
	}
	if ss := ref.Value; ss.Type != "http" || ss.Scheme != "bearer" || ss.BearerFormat != "JWT" {
		t.Errorf("bearerAuth is %s %s %s, want http bearer JWT", ss.Type, ss.Scheme, ss.BearerFormat)
	}
	if len(doc.Security) != 0 {
		t.Errorf("a document-wide security requirement %v would close the public operations too", doc.Security)
	}
	bearer := openapi3.SecurityRequirements{{"bearerAuth": []string{}}}
	secured := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			token := op.Security != nil && reflect.DeepEqual(*op.Security, bearer)
			if op.Security != nil && len(*op.Security) != 0 && !token {
				t.Errorf("%s requires %v, want %v or nothing", name, *op.Security, bearer)
			}
			switch {
			case slices.Equal(op.Tags, []string{"HomeService"}) && !token:
				t.Errorf("%s (home service) does not require the bearer token", name)
			case slices.Equal(op.Tags, []string{"AuthService"}) && token:
				t.Errorf("%s (auth service) requires the bearer token", name)
			case !slices.Contains(op.Tags, "HomeService") && !slices.Contains(op.Tags, "AuthService"):
				t.Errorf("%s belongs to no known service: %v", name, op.Tags)
			}
			secured[name] = token
		}
	}
	contract, err := os.ReadFile(apiMD)
	if err != nil {
		t.Fatalf("read the contract: %v", err)
	}
	for _, row := range endpointRow.FindAllStringSubmatch(string(contract), -1) {
		name, who := row[1]+" "+row[2], strings.TrimSpace(row[3])
		if public := strings.HasPrefix(who, "anyone"); secured[name] == public {
			t.Errorf("%s: requires the bearer token: %v, but API.md says who: %q", name, secured[name], who)
		}
	}
	for _, name := range []string{"POST /refresh", "POST /logout"} {
		if _, ok := secured[name]; !ok || secured[name] {
			t.Errorf("%s: in the document %v, requires the bearer token: %v; want a public operation", name, ok, secured[name])
		}
	}
}

// loadSpec loads and validates the served document.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(apidocs.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// TestSpecAnswersWithTheBareObject: response_body in the google.api.http
// rules makes /house/create answer with a House and the flat methods with a
// Flat, not the wrapper messages; the wrappers are gone.
func TestSpecAnswersWithTheBareObject(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	for path, want := range map[string]string{
		"/house/create": "House",
		"/flat/create":  "Flat",
		"/flat/update":  "Flat",
		"/house/{id}":   "GetHouseFlatsResponse",
		"/login":        "LoginResponse",
	} {
		op := doc.Paths.Value(path).GetOperation(http.MethodPost)
		if op == nil {
			op = doc.Paths.Value(path).GetOperation(http.MethodGet)
		}
		schema := op.Responses.Value("200").Value.Content.Get("application/json").Schema
		if schema.Ref != "#/components/schemas/"+want || schema.Value != doc.Components.Schemas[want].Value {
			t.Errorf("%s answers %q, want %s", path, schema.Ref, want)
		}
	}
	for _, wrapper := range []string{"CreateHouseResponse", "CreateFlatResponse", "UpdateFlatResponse"} {
		if _, ok := doc.Components.Schemas[wrapper]; ok {
			t.Errorf("the document still has the wrapper %s", wrapper)
		}
	}
}

// TestSpecErrorBody: every operation documents its error answers with the
// Error schema, which is exactly the server's error body.
func TestSpecErrorBody(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil {
		t.Fatal("no Error schema")
	}
	// The schema's fields are server.ErrorBody's JSON fields, all required.
	var fields []string
	for f := range reflect.TypeFor[server.ErrorBody]().Fields() {
		fields = append(fields, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	props := slices.Sorted(maps.Keys(errSchema.Value.Properties))
	slices.Sort(fields)
	if !slices.Equal(props, fields) || !slices.Equal(slices.Sorted(slices.Values(errSchema.Value.Required)), fields) {
		t.Errorf("Error has %v (required %v), the server writes %v", props, errSchema.Value.Required, fields)
	}
	if !errSchema.Value.Properties["code"].Value.Type.Is("integer") {
		t.Error("Error.code is not an integer")
	}
	want := map[string][]string{ // beyond 400, 429 and 5XX, which all have
		"GET /dummyLogin":            {"404"},
		"POST /register":             {"409"},
		"POST /login":                {"401", "404"},
		"POST /house/create":         {"401", "403"},
		"GET /house/{id}":            {"401", "404"},
		"POST /house/{id}/subscribe": {"401", "404"},
		"POST /flat/create":          {"401", "404"},
		"POST /flat/update":          {"401", "403", "404", "409"},
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			statuses := append([]string{"400", "429", "5XX"}, want[name]...)
			for _, st := range statuses {
				if op.Responses.Value(st) == nil {
					t.Errorf("%s does not document %s", name, st)
				}
			}
			for st, r := range op.Responses.Map() {
				if st == "200" {
					continue
				}
				schema := r.Value.Content.Get("application/json").Schema
				if schema.Ref != "#/components/schemas/Error" || schema.Value != errSchema.Value {
					t.Errorf("%s %s answers %q, not the Error schema", name, st, schema.Ref)
				}
				if r.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s %s has no X-Request-Id header", name, st)
				}
				if (st == "429" || st == "5XX") != (r.Value.Headers["Retry-After"] != nil) {
					t.Errorf("%s %s: Retry-After documented: %v", name, st, r.Value.Headers["Retry-After"] != nil)
				}
			}
		}
	}
}

// TestSpecValidationLimits: the buf.validate rules of the protos show as
// schema limits, and the answers' JSON shape is right.
func TestSpecValidationLimits(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	prop := func(schema, field string) *openapi3.Schema {
		t.Helper()
		s := doc.Components.Schemas[schema]
		if s == nil || s.Value.Properties[field] == nil {
			t.Fatalf("no %s.%s", schema, field)
		}
		return s.Value.Properties[field].Value
	}
	num := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	length := func(p *uint64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"address minLength", prop("CreateHouseRequest", "address").MinLength, uint64(1)},
		{"address maxLength", length(prop("CreateHouseRequest", "address").MaxLength), uint64(512)},
		{"developer maxLength", length(prop("CreateHouseRequest", "developer").MaxLength), uint64(256)},
		{"rooms minimum", num(prop("CreateFlatRequest", "rooms").Min), 1.0},
		{"rooms maximum", num(prop("CreateFlatRequest", "rooms").Max), 100.0},
		{"price minimum", num(prop("CreateFlatRequest", "price").Min), 0.0},
		{"house_id minimum", num(prop("CreateFlatRequest", "house_id").Min), 1.0},
		{"update id minimum", num(prop("UpdateFlatRequest", "id").Min), 1.0},
		{"password maxLength", length(prop("RegisterRequest", "password").MaxLength), uint64(72)},
		{"login password maxLength", length(prop("LoginRequest", "password").MaxLength), uint64(72)},
		{"email maxLength", length(prop("RegisterRequest", "email").MaxLength), uint64(254)},
		{"email format", prop("RegisterRequest", "email").Format, "email"},
		{"subscribe email format", prop("SubscribeRequest", "email").Format, "email"},
		{"login id format", prop("LoginRequest", "id").Format, "uuid"},
		{"user_type enum", prop("RegisterRequest", "user_type").Enum, []any{"client", "moderator"}},
		{"update status enum", prop("UpdateFlatRequest", "status").Enum, []any{"created", "approved", "declined", "on moderation", "on_moderation"}},
		// The answers' JSON: int32 are numbers, developer may be null, a
		// flat's status is one of four strings.
		{"flat status enum", prop("Flat", "status").Enum, []any{"created", "approved", "declined", "on moderation"}},
		{"developer nullable", prop("House", "developer").Nullable, true},
		{"request developer nullable", prop("CreateHouseRequest", "developer").Nullable, true},
		{"price type", prop("Flat", "price").Type.Slice(), []string{"integer"}},
		{"house id type", prop("House", "id").Type.Slice(), []string{"integer"}},
		{"created_at format", prop("House", "created_at").Format, "date-time"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	for schema, field := range map[string]string{"RegisterRequest": "password", "LoginRequest": "password"} {
		if d := prop(schema, field).Description; !strings.Contains(d, "8 to 72 bytes") {
			t.Errorf("%s.%s does not say its byte limits: %q", schema, field, d)
		}
	}
	if d := prop("CreateHouseRequest", "year").Description; !strings.Contains(d, "current year + 10") {
		t.Errorf("year does not say its range: %q", d)
	}
	if d := doc.Components.Schemas["LoginRequest"].Value.Description; !strings.Contains(d, "Exactly one of `id`, `email`") {
		t.Errorf("LoginRequest does not say id or email is required: %q", d)
	}
	// Path and query parameters carry the limits too.
	params := map[string]*openapi3.Schema{}
	for _, path := range []string{"/dummyLogin", "/house/{id}"} {
		for _, op := range doc.Paths.Value(path).Operations() {
			for _, p := range op.Parameters {
				params[path+" "+p.Value.Name] = p.Value.Schema.Value
			}
		}
	}
	if s := params["/dummyLogin user_type"]; s == nil || !reflect.DeepEqual(s.Enum, []any{"client", "moderator"}) {
		t.Errorf("/dummyLogin user_type: %+v", s)
	}
	if s := params["/house/{id} id"]; s == nil || s.Min == nil || *s.Min != 1 {
		t.Errorf("/house/{id} id: %+v", s)
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
	if get("/openapi.yaml").Body.String() != string(apidocs.Spec()) {
		t.Error("/openapi.yaml is not the completed document")
	}
	initJS := get("/docs/swagger-initializer.js").Body.String()
	if !strings.Contains(initJS, `"/openapi.yaml"`) {
		t.Error("Swagger UI is not pointed at /openapi.yaml")
	}
	// Unset, validatorUrl makes Swagger UI load a badge from
	// validator.swagger.io on every host but localhost: a third party, and
	// the docs must work offline.
	if !regexp.MustCompile(`(?m)^\s*validatorUrl: null,$`).MatchString(initJS) {
		t.Errorf("Swagger UI's validatorUrl is not null:\n%s", initJS)
	}
	if strings.Contains(initJS+page.Body.String(), "validator.swagger.io") {
		t.Error("the docs page names validator.swagger.io")
	}
	if rec := get("/docs/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("missing asset: %d", rec.Code)
	}
}
