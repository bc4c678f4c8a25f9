package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestWrongTypesNameTheField: a value of the wrong JSON type is 400 naming
// the field as the contract spells it (house_id, not protojson's houseId),
// wrappers such as developer included, on every request.
func TestWrongTypesNameTheField(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod := in.Token(t, authn.RoleModerator)
	hid := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020}).Num(t, "id")
	fid := createFlat(t, in, mod, hid, 100, 2).Num(t, "id")
	cases := []struct {
		path, token string
		body        map[string]any
		field       string
	}{
		{"/flat/create", mod, map[string]any{"house_id": "x", "price": 1, "rooms": 1}, "house_id"},
		{"/flat/create", mod, map[string]any{"house_id": hid, "price": true, "rooms": 1}, "price"},
		{"/flat/create", mod, map[string]any{"house_id": hid, "price": 1, "rooms": []int{1}}, "rooms"},
		{"/house/create", mod, map[string]any{"address": "a", "year": 2000, "developer": 5}, "developer"},
		{"/house/create", mod, map[string]any{"address": 5, "year": 2000}, "address"},
		{"/house/create", mod, map[string]any{"address": "a", "year": "abc"}, "year"},
		{"/flat/update", mod, map[string]any{"id": "x", "status": "approved"}, "id"},
		{"/flat/update", mod, map[string]any{"id": fid, "status": 5}, "status"},
		{fmt.Sprintf("/house/%d/subscribe", hid), mod, map[string]any{"email": 5}, "email"},
		{"/register", "", map[string]any{"email": "a@example.com", "password": "12345678", "user_type": 5}, "user_type"},
		{"/register", "", map[string]any{"email": false, "password": "12345678", "user_type": "client"}, "email"},
		{"/login", "", map[string]any{"email": "a@example.com", "password": 12345678}, "password"},
		{"/refresh", "", map[string]any{"refresh_token": 5}, "refresh_token"},
		{"/logout", "", map[string]any{"refresh_token": 5}, "refresh_token"},
	}
	for _, c := range cases {
		r := in.Do(t, post, c.path, c.token, c.body)
		wantError(t, r, 400, "invalid "+c.field+":")
	}
}

// TestValidationOfEveryAuthField: the auth requests' remaining fields, each
// invalid on its own, get 400 naming it.
func TestValidationOfEveryAuthField(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"email": "not-an-email", "password": "12345678"}), 400, "email")
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"email": "a@example.com", "password": "short"}), 400, "password")
	wantError(t, in.Do(t, post, "/refresh", "", map[string]any{"refresh_token": ""}), 400, "refresh_token")
	wantError(t, in.Do(t, post, "/logout", "", map[string]any{}), 400, "refresh_token")
	mod := in.Token(t, authn.RoleModerator)
	wantError(t, in.Do(t, post, "/house/0/subscribe", mod, map[string]any{"email": "a@example.com"}), 400, "id")

	// A rejected registration writes no user.
	wantError(t, in.Do(t, post, "/register", "", map[string]any{"email": "a@example.com", "password": "1", "user_type": "client"}), 400, "password")
	var n int
	if err := in.App.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d users written by a rejected registration", n)
	}
}

// TestRoleComesBeforeValidation: the wrong role is 403 whatever the body
// says, so a client learns nothing about the moderators' input rules, and
// nothing is written.
func TestRoleComesBeforeValidation(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	hid := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020}).Num(t, "id")
	fid := createFlat(t, in, client, hid, 100, 2).Num(t, "id")

	wantError(t, in.Do(t, post, "/house/create", client, map[string]any{"address": "", "year": -1}), 403, "")
	wantError(t, in.Do(t, post, "/flat/update", client, map[string]any{"id": 0, "status": "sold"}), 403, "")
	wantError(t, in.Do(t, post, "/flat/update", client, map[string]any{"id": fid, "status": "approved"}), 403, "")

	var houses int
	var status string
	db := in.App.DB()
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM houses").Scan(&houses); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(context.Background(), "SELECT status FROM flats WHERE id = ?", fid).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if houses != 1 || status != "created" {
		t.Fatalf("after refused requests: %d houses, flat %s; want 1 house, flat created", houses, status)
	}
}

// TestDummyLoginOffLooksAbsent: switched off, /dummyLogin is 404 whatever
// its query, valid or not.
func TestDummyLoginOffLooksAbsent(t *testing.T) {
	t.Parallel()
	off := apptest.Start(t, func(c *app.Config) { c.DummyLogin = false })
	for _, q := range []string{"?user_type=client", "?user_type=admin", ""} {
		wantError(t, off.Do(t, get, "/dummyLogin"+q, "", nil), 404, "")
	}
}

// TestCompressedBodies: a gzip body is taken, on REST and Connect JSON; a
// body that claims gzip and is not is the client's fault, 400, not 500.
func TestCompressedBodies(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	send := func(path, contentType string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(post, in.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := in.HTTP1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write([]byte(`{"email":"zip@example.com","password":"12345678","user_type":"client"}`)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := send("/register", "application/json", zipped.Bytes()); status != 200 || !strings.Contains(body, "user_id") {
		t.Fatalf("gzip REST body: %d %s", status, body)
	}
	for _, path := range []string{"/register", "/homes.auth.v1.AuthService/Register"} {
		status, body := send(path, "application/json", []byte(`{"email":"x@example.com"}`))
		if status != 400 || !strings.Contains(body, "gzip") {
			t.Fatalf("%s with a body that is not gzip: %d %s, want 400 naming gzip", path, status, body)
		}
	}
}
