package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestAnswersMatchTheServedDocument: real REST answers, successes and
// errors, validate against the schemas that /openapi.yaml documents for
// their path, method and status — the bare House and Flat of response_body,
// the nullable developer, the Error body.
func TestAnswersMatchTheServedDocument(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	served := in.Do(t, get, "/openapi.yaml", "", nil).MustOK(t).Raw
	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	check := func(method, template, path, token string, body any, wantStatus int) map[string]any {
		t.Helper()
		r := in.Do(t, method, path, token, body)
		if r.Status != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Raw, wantStatus)
		}
		op := doc.Paths.Value(template).GetOperation(method)
		resp := op.Responses.Status(r.Status)
		if resp == nil {
			t.Fatalf("%s %s: status %d is not documented", method, template, r.Status)
		}
		var v any
		if err := json.Unmarshal(r.Raw, &v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		schema := resp.Value.Content.Get("application/json").Schema.Value
		if err := schema.VisitJSON(v, openapi3.MultiErrors()); err != nil {
			t.Errorf("%s %s %d: the answer %s does not match the document: %v", method, path, r.Status, r.Raw, err)
		}
		return r.JSON
	}
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	house := check(post, "/house/create", "/house/create", mod, map[string]any{"address": "Doc 1", "year": 1999}, 200)
	if _, wrapped := house["house"]; wrapped || house["developer"] != nil {
		t.Fatalf("create house answered %v", house)
	}
	check(post, "/house/create", "/house/create", mod, map[string]any{"address": "Doc 2", "year": 1999, "developer": "Dev"}, 200)
	hid := int(house["id"].(float64))
	flat := check(post, "/flat/create", "/flat/create", client, map[string]any{"house_id": hid, "price": 10, "rooms": 2}, 200)
	fid := int(flat["id"].(float64))
	check(post, "/flat/update", "/flat/update", mod, map[string]any{"id": fid, "status": "on moderation"}, 200)
	check(get, "/house/{id}", fmt.Sprintf("/house/%d", hid), mod, nil, 200)
	check(post, "/house/{id}/subscribe", fmt.Sprintf("/house/%d/subscribe", hid), client, map[string]any{"email": "doc@example.com"}, 200)
	check(post, "/register", "/register", "", map[string]any{"email": "doc@example.com", "password": "password1", "user_type": "client"}, 200)

	// Errors: the Error body, on the statuses the document lists.
	check(post, "/house/create", "/house/create", mod, map[string]any{"address": "", "year": 1999}, http.StatusBadRequest)
	check(post, "/house/create", "/house/create", "", map[string]any{"address": "x", "year": 1999}, http.StatusUnauthorized)
	check(post, "/house/create", "/house/create", client, map[string]any{"address": "x", "year": 1999}, http.StatusForbidden)
	check(get, "/house/{id}", "/house/999999", mod, nil, http.StatusNotFound)
	check(post, "/flat/update", "/flat/update", mod, map[string]any{"id": fid, "status": "created"}, 200)
	check(post, "/flat/update", "/flat/update", mod, map[string]any{"id": fid, "status": "approved"}, http.StatusConflict)
	check(post, "/register", "/register", "", map[string]any{"email": "doc@example.com", "password": "password1", "user_type": "client"}, http.StatusConflict)
}
