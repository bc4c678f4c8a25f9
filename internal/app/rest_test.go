package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

const (
	get  = http.MethodGet
	post = http.MethodPost
)

// wantError checks the API.md error body: status, a message naming what is
// wrong, the request id, the numeric code, and the X-Request-Id header.
func wantError(t *testing.T, r apptest.Response, status int, mention string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	msg, _ := r.JSON["message"].(string)
	if msg == "" {
		t.Fatalf("error body has no message: %s", r.Raw)
	}
	if mention != "" && !strings.Contains(msg, mention) {
		t.Fatalf("message %q does not mention %q", msg, mention)
	}
	if code, _ := r.JSON["code"].(float64); int(code) != status {
		t.Fatalf("body code %v, want %d: %s", r.JSON["code"], status, r.Raw)
	}
	rid, _ := r.JSON["request_id"].(string)
	if rid == "" || rid != r.Header.Get("X-Request-Id") {
		t.Fatalf("request_id %q vs header %q", rid, r.Header.Get("X-Request-Id"))
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d without Retry-After", status)
		}
	}
	for _, leak := range []string{"SQLSTATE", "pq:", "goroutine", "panic", "pgx", ".go:"} {
		if strings.Contains(string(r.Raw), leak) {
			t.Fatalf("error body leaks %q: %s", leak, r.Raw)
		}
	}
}

func createHouse(t *testing.T, in *apptest.Instance, tok string, body map[string]any) apptest.Response {
	t.Helper()
	return in.Do(t, post, "/house/create", tok, body).MustOK(t)
}

func createFlat(t *testing.T, in *apptest.Instance, tok string, house, price, rooms int) apptest.Response {
	t.Helper()
	return in.Do(t, post, "/flat/create", tok, map[string]any{"house_id": house, "price": price, "rooms": rooms}).MustOK(t)
}

func flatsOf(t *testing.T, r apptest.Response) []map[string]any {
	t.Helper()
	raw, ok := r.JSON["flats"].([]any)
	if !ok {
		t.Fatalf("flats is %T, want an array: %s", r.JSON["flats"], r.Raw)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, f := range raw {
		out = append(out, f.(map[string]any))
	}
	return out
}

func TestDummyLogin(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	for _, role := range []authn.Role{authn.RoleClient, authn.RoleModerator} {
		tok := in.Token(t, role)
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("token %q is not a JWT", tok)
		}
	}
	wantError(t, in.Do(t, get, "/dummyLogin?user_type=admin", "", nil), 400, "user_type")
	wantError(t, in.Do(t, get, "/dummyLogin", "", nil), 400, "user_type")

	off := apptest.Start(t, func(c *app.Config) { c.DummyLogin = false })
	wantError(t, off.Do(t, get, "/dummyLogin?user_type=client", "", nil), 404, "")
}

func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	reg := in.Do(t, post, "/register", "", map[string]any{
		"email": "Buyer@Example.com", "password": "correct horse", "user_type": "client",
	}).MustOK(t)
	id := reg.Str(t, "user_id")
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("user_id %q is not a uuid", id)
	}
	wantError(t, in.Do(t, post, "/register", "", map[string]any{
		"email": "buyer@example.COM", "password": "other password", "user_type": "moderator",
	}), 409, "")

	byID := in.Do(t, post, "/login", "", map[string]any{"id": id, "password": "correct horse"}).MustOK(t)
	if byID.Str(t, "token") == "" || byID.Str(t, "refresh_token") == "" || byID.Num(t, "expires_in") <= 0 {
		t.Fatalf("login answer incomplete: %s", byID.Raw)
	}
	// The token works on the home service and carries the registered role.
	in.Do(t, get, "/house/1", byID.Str(t, "token"), nil)
	wantError(t, in.Do(t, post, "/house/create", byID.Str(t, "token"), map[string]any{"address": "a", "year": 2000}), 403, "")

	in.Do(t, post, "/login", "", map[string]any{"email": "BUYER@example.com", "password": "correct horse"}).MustOK(t)
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"id": id, "password": "wrong horse"}), 401, "")
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"id": uuid.NewString(), "password": "correct horse"}), 404, "")
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"email": "nobody@example.com", "password": "correct horse"}), 404, "")
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"password": "correct horse"}), 400, "")
	wantError(t, in.Do(t, post, "/login", "", map[string]any{"id": "not-a-uuid", "password": "correct horse"}), 400, "id")

	// Refresh rotates; the old refresh token is then refused.
	rt := byID.Str(t, "refresh_token")
	next := in.Do(t, post, "/refresh", "", map[string]any{"refresh_token": rt}).MustOK(t)
	if next.Str(t, "refresh_token") == rt {
		t.Fatal("refresh did not rotate the refresh token")
	}
	wantError(t, in.Do(t, post, "/refresh", "", map[string]any{"refresh_token": rt}), 401, "")
	// Reuse revoked the family: the newest token is dead too.
	wantError(t, in.Do(t, post, "/refresh", "", map[string]any{"refresh_token": next.Str(t, "refresh_token")}), 401, "")

	fresh := in.Do(t, post, "/login", "", map[string]any{"id": id, "password": "correct horse"}).MustOK(t)
	in.Do(t, post, "/logout", "", map[string]any{"refresh_token": fresh.Str(t, "refresh_token")}).MustOK(t)
	wantError(t, in.Do(t, post, "/refresh", "", map[string]any{"refresh_token": fresh.Str(t, "refresh_token")}), 401, "")
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	valid := func() map[string]any {
		return map[string]any{"email": "a@example.com", "password": "12345678", "user_type": "client"}
	}
	cases := []struct {
		field string
		value any
	}{
		{"email", ""},
		{"email", "not-an-email"},
		{"email", strings.Repeat("a", 245) + "@example.com"},
		{"password", "1234567"},
		{"password", strings.Repeat("p", 73)},
		{"password", strings.Repeat("ж", 37)}, // 74 bytes
		{"user_type", "admin"},
		{"user_type", ""},
	}
	for _, c := range cases {
		body := valid()
		body[c.field] = c.value
		wantError(t, in.Do(t, post, "/register", "", body), 400, c.field)
	}
	body := valid()
	body["password"] = strings.Repeat("p", 72)
	in.Do(t, post, "/register", "", body).MustOK(t)
}

func TestHouses(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)

	h := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020, "developer": "PIK"})
	if h.Num(t, "id") < 1 || h.Str(t, "address") != "Lenina 1" || h.Num(t, "year") != 2020 || h.Str(t, "developer") != "PIK" {
		t.Fatalf("house: %s", h.Raw)
	}
	created, err := time.Parse(time.RFC3339, h.Str(t, "created_at"))
	if err != nil || created.Location() != time.UTC || !strings.HasSuffix(h.Str(t, "created_at"), "Z") {
		t.Fatalf("created_at %q is not RFC 3339 UTC", h.Str(t, "created_at"))
	}
	if h.Str(t, "update_at") != h.Str(t, "created_at") {
		t.Fatalf("update_at %q != created_at %q before any flat", h.Str(t, "update_at"), h.Str(t, "created_at"))
	}

	bare := createHouse(t, in, mod, map[string]any{"address": "Mira 2", "year": 0, "unknown_field": true})
	if v, present := bare.JSON["developer"]; present && v != nil {
		t.Fatalf("developer of a house without one is %v", v)
	}
	if bare.Num(t, "year") != 0 {
		t.Fatalf("year 0 not written as 0: %s", bare.Raw)
	}

	empty := in.Do(t, get, fmt.Sprintf("/house/%d", bare.Num(t, "id")), client, nil).MustOK(t)
	if string(empty.Raw) == "" || len(flatsOf(t, empty)) != 0 {
		t.Fatalf("empty house: %s", empty.Raw)
	}

	wantError(t, in.Do(t, post, "/house/create", client, map[string]any{"address": "x", "year": 2000}), 403, "")
	wantError(t, in.Do(t, post, "/house/create", "", map[string]any{"address": "x", "year": 2000}), 401, "")
	wantError(t, in.Do(t, get, "/house/999999", client, nil), 404, "")
	wantError(t, in.Do(t, get, "/house/0", client, nil), 400, "id")
	wantError(t, in.Do(t, get, "/house/abc", client, nil), 400, "")
	wantError(t, in.Do(t, get, "/house/1", "", nil), 401, "")
}

func TestHouseValidation(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod := in.Token(t, authn.RoleModerator)
	maxYear := time.Now().UTC().Year() + 10
	cases := []struct {
		field string
		value any
	}{
		{"address", ""},
		{"address", strings.Repeat("a", 513)},
		{"year", -1},
		{"year", maxYear + 1},
		{"year", "twenty"},
		{"developer", strings.Repeat("d", 257)},
	}
	for _, c := range cases {
		body := map[string]any{"address": "Lenina 1", "year": 2000, "developer": "PIK"}
		body[c.field] = c.value
		wantError(t, in.Do(t, post, "/house/create", mod, body), 400, c.field)
	}
	createHouse(t, in, mod, map[string]any{"address": strings.Repeat("a", 512), "year": maxYear, "developer": strings.Repeat("d", 256)})
	wantError(t, in.Do(t, post, "/house/create", mod, `{"address": "x", "year": `), 400, "")
	wantError(t, in.Do(t, post, "/house/create", mod, `[1,2]`), 400, "")
	// Only the one valid house was written.
	var n int
	if err := in.App.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM houses").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d houses written, want 1", n)
	}
}

func TestFlatsAndModeration(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod, mod2, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	house := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020})
	hid := house.Num(t, "id")

	time.Sleep(10 * time.Millisecond)
	f1 := createFlat(t, in, client, hid, 0, 1)
	if f1.Str(t, "status") != "created" || f1.Num(t, "number") != 1 || f1.Num(t, "house_id") != hid ||
		f1.Num(t, "price") != 0 || f1.Num(t, "rooms") != 1 || f1.Num(t, "id") < 1 {
		t.Fatalf("flat: %s", f1.Raw)
	}
	f2 := createFlat(t, in, mod, hid, 9_000_000, 3)
	if f2.Num(t, "number") != 2 {
		t.Fatalf("second flat number %d", f2.Num(t, "number"))
	}
	var createdAt, updateAt time.Time
	if err := in.App.DB().QueryRowContext(context.Background(),
		"SELECT created_at, update_at FROM houses WHERE id = ?", hid).Scan(&createdAt, &updateAt); err != nil {
		t.Fatal(err)
	}
	if !updateAt.After(createdAt) {
		t.Fatalf("update_at %v not moved past created_at %v by a new flat", updateAt, createdAt)
	}

	path := fmt.Sprintf("/house/%d", hid)
	if got := flatsOf(t, in.Do(t, get, path, client, nil).MustOK(t)); len(got) != 0 {
		t.Fatalf("client sees unapproved flats: %v", got)
	}
	if got := flatsOf(t, in.Do(t, get, path, mod, nil).MustOK(t)); len(got) != 2 ||
		got[0]["id"].(float64) >= got[1]["id"].(float64) {
		t.Fatalf("moderator list: %v", got)
	}

	update := func(tok string, id int, status string) apptest.Response {
		return in.Do(t, post, "/flat/update", tok, map[string]any{"id": id, "status": status})
	}
	id1 := f1.Num(t, "id")
	wantError(t, update(client, id1, "approved"), 403, "")
	wantError(t, update(mod, id1, "approved"), 409, "") // created → approved skips moderation
	if update(mod, id1, "on_moderation").MustOK(t).Str(t, "status") != "on moderation" {
		t.Fatal("on_moderation not taken as on moderation")
	}
	update(mod, id1, "on moderation").MustOK(t)               // same status by the holder: no-op
	wantError(t, update(mod2, id1, "approved"), 409, "")      // another moderator: held
	wantError(t, update(mod2, id1, "created"), 409, "")       // another moderator cannot release
	wantError(t, update(mod2, id1, "on moderation"), 409, "") // nor take it
	if update(mod, id1, "approved").MustOK(t).Str(t, "status") != "approved" {
		t.Fatal("holder could not approve")
	}
	wantError(t, update(mod, id1, "declined"), 409, "") // approved is final
	update(mod, id1, "approved").MustOK(t)              // no-op

	id2 := f2.Num(t, "id")
	update(mod2, id2, "on moderation").MustOK(t)
	update(mod2, id2, "created").MustOK(t) // release
	update(mod, id2, "on moderation").MustOK(t)
	update(mod, id2, "declined").MustOK(t)

	got := flatsOf(t, in.Do(t, get, path, client, nil).MustOK(t))
	if len(got) != 1 || int(got[0]["id"].(float64)) != id1 || got[0]["status"] != "approved" {
		t.Fatalf("client list after approval: %v", got)
	}

	wantError(t, update(mod, 999999, "on moderation"), 404, "")
	wantError(t, update(mod, 0, "approved"), 400, "id")
	wantError(t, update(mod, id2, "sold"), 400, "status")
	wantError(t, update("", id2, "approved"), 401, "")
}

func TestFlatValidation(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod := in.Token(t, authn.RoleModerator)
	hid := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020}).Num(t, "id")
	cases := []struct {
		field string
		value any
	}{
		{"house_id", 0},
		{"house_id", -5},
		{"price", -1},
		{"price", 1.5},
		{"rooms", 0},
		{"rooms", 101},
		{"rooms", "two"},
	}
	for _, c := range cases {
		body := map[string]any{"house_id": hid, "price": 100, "rooms": 2}
		body[c.field] = c.value
		wantError(t, in.Do(t, post, "/flat/create", mod, body), 400, c.field)
	}
	wantError(t, in.Do(t, post, "/flat/create", mod, map[string]any{"house_id": 424242, "price": 1, "rooms": 1}), 404, "")
	wantError(t, in.Do(t, post, "/flat/create", "", map[string]any{"house_id": hid, "price": 1, "rooms": 1}), 401, "")
	createFlat(t, in, mod, hid, 1, 100)
	var n int
	if err := in.App.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM flats").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d flats written, want only the valid one", n)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod, client := in.Token(t, authn.RoleModerator), in.Token(t, authn.RoleClient)
	hid := createHouse(t, in, mod, map[string]any{"address": "Lenina 1", "year": 2020}).Num(t, "id")
	path := fmt.Sprintf("/house/%d/subscribe", hid)
	r := in.Do(t, post, path, client, map[string]any{"email": "buyer@example.com"}).MustOK(t)
	if strings.TrimSpace(string(r.Raw)) != "{}" {
		t.Fatalf("subscribe answered %s, want {}", r.Raw)
	}
	in.Do(t, post, path, mod, map[string]any{"email": "Buyer@Example.com"}).MustOK(t)
	wantError(t, in.Do(t, post, path, client, map[string]any{"email": "nope"}), 400, "email")
	wantError(t, in.Do(t, post, "/house/777777/subscribe", client, map[string]any{"email": "a@example.com"}), 404, "")
	wantError(t, in.Do(t, post, path, "", map[string]any{"email": "a@example.com"}), 401, "")
	var n int
	if err := in.App.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM subscriptions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
}

func TestTokensAreVerified(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	other := apptest.Start(t) // another key
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"sub": uuid.NewString(), "role": "moderator", "iss": "homes-auth", "aud": "homes",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	})
	noneTok, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"malformed":      "not.a.jwt",
		"garbage":        "abc",
		"expired":        in.SignToken(t, authn.RoleModerator, -time.Minute),
		"wrongly signed": other.Token(t, authn.RoleModerator),
		"alg none":       noneTok,
	}
	body := map[string]any{"address": "x", "year": 2000}
	for name, tok := range bad {
		r := in.Do(t, post, "/house/create", tok, body)
		if r.Status != 401 {
			t.Errorf("%s token: status %d, want 401", name, r.Status)
		}
		wantError(t, r, 401, "")
	}
	req, _ := http.NewRequest(post, in.URL+"/house/create", strings.NewReader(`{"address":"x","year":2000}`))
	req.Header.Set("Authorization", "Basic "+in.Token(t, authn.RoleModerator))
	resp, err := in.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("non-bearer scheme: %d, want 401", resp.StatusCode)
	}
	in.Do(t, post, "/house/create", in.SignToken(t, authn.RoleModerator, time.Minute), body).MustOK(t)
}

func TestRequestIDsAndErrors(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	req, _ := http.NewRequest(get, in.URL+"/house/1", nil)
	req.Header.Set("X-Request-Id", "trace-me-42")
	resp, err := in.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "trace-me-42" {
		t.Fatalf("request id not echoed: %q", resp.Header.Get("X-Request-Id"))
	}
	r := in.Do(t, get, "/no/such/path", "", nil)
	wantError(t, r, 404, "")
	if _, err := uuid.Parse(r.Header.Get("X-Request-Id")); err != nil {
		t.Fatalf("generated request id %q", r.Header.Get("X-Request-Id"))
	}
	wantError(t, in.Do(t, post, "/register", "", strings.Repeat("x", 2<<20)), 413, "")

	// A server-side failure: 500 with a generic message, Retry-After, and
	// no SQL in the body.
	mod := in.Token(t, authn.RoleModerator)
	if _, err := in.App.DB().ExecContext(context.Background(), "ALTER TABLE houses RENAME TO houses_gone"); err != nil {
		t.Fatal(err)
	}
	wantError(t, in.Do(t, post, "/house/create", mod, map[string]any{"address": "x", "year": 2000}), 500, "")
}

// TestAuthenticationComesFirst: without credentials, the answer is 401
// whatever the (well-formed) body says; a body that is not JSON at all is
// refused by the transcoder before any RPC exists, with 400.
func TestAuthenticationComesFirst(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	wantError(t, in.Do(t, post, "/flat/create", "", map[string]any{"house_id": 0, "price": -1, "rooms": 0}), 401, "")
	wantError(t, in.Do(t, post, "/house/create", "", `{"address":`), 400, "")
}

// TestNULCharactersAreBadInput: PostgreSQL text cannot store NUL, so every
// string field refuses it with 400 naming the field, never a 500.
func TestNULCharactersAreBadInput(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod := in.Token(t, authn.RoleModerator)
	wantError(t, in.Do(t, post, "/house/create", mod, map[string]any{"address": "a\x00b", "year": 2000}), 400, "address")
	wantError(t, in.Do(t, post, "/house/create", mod, map[string]any{"address": "a", "year": 2000, "developer": "P\x00K"}), 400, "developer")
	wantError(t, in.Do(t, post, "/register", "", map[string]any{"email": "a@example.com", "password": "pass\x00word1", "user_type": "client"}), 400, "password")
}
