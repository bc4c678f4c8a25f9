package home_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestListingNeverStaleAcrossReplicas runs two replicas on one database.
// Each caches house listings; every change made through one must be seen by
// the very next request to the other, with a new ETag, and an ETag taken
// before the change must not earn a 304 after it. Every read is made twice,
// through pkg/server's REST shortcut (GET /house/{id}) and through vanguard's
// transcoder (a query string sends it there), and both must give the same
// answer byte for byte.
func TestListingNeverStaleAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t)
	b := apptest.StartWith(t, a.Config, a.Key)

	mod := a.Token(t, authn.RoleModerator)
	client := b.Token(t, authn.RoleClient)
	house := a.Do(t, "POST", "/house/create", mod, map[string]any{"address": "1 Cache St", "year": 2020}).MustOK(t).Num(t, "id")
	path := "/house/" + strconv.Itoa(house)

	get := func(in *apptest.Instance, token string) (int, string) {
		t.Helper()
		r := in.Do(t, "GET", path, token, nil).MustOK(t)
		flats, _ := r.JSON["flats"].([]any)
		if r.Header.Get("ETag") == "" {
			t.Fatalf("no ETag on %s", path)
		}
		slow := in.Do(t, "GET", path+"?via=transcoder", token, nil).MustOK(t)
		if !bytes.Equal(r.Raw, slow.Raw) || r.Header.Get("ETag") != slow.Header.Get("ETag") {
			t.Fatalf("shortcut and transcoder differ:\n%s %s\n%s %s", r.Header.Get("ETag"), r.Raw,
				slow.Header.Get("ETag"), slow.Raw)
		}
		return len(flats), r.Header.Get("ETag")
	}
	conditional := func(token, etag string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", b.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("If-None-Match", etag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	n, etag0 := get(b, client) // b caches the empty listing
	if n != 0 {
		t.Fatalf("new house lists %d flats", n)
	}
	if got := conditional(client, etag0); got != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: %d, want 304", got)
	}
	flat := a.Do(t, "POST", "/flat/create", client, map[string]any{"house_id": house, "price": 100, "rooms": 2}).MustOK(t).Num(t, "id")
	if n, _ := get(b, b.Token(t, authn.RoleModerator)); n != 1 {
		t.Fatalf("moderator on b after a creation on a: %d flats, want 1", n)
	}
	for _, status := range []string{"on moderation", "approved"} {
		a.Do(t, "POST", "/flat/update", mod, map[string]any{"id": flat, "status": status}).MustOK(t)
		n, etag := get(b, client)
		want := 0
		if status == "approved" {
			want = 1
		}
		if n != want {
			t.Fatalf("client on b right after %q on a: %d flats, want %d", status, n, want)
		}
		if status == "approved" {
			if etag == etag0 {
				t.Fatalf("ETag %s did not change with the listing", etag)
			}
			if got := conditional(client, etag0); got != http.StatusOK {
				t.Fatalf("If-None-Match with the old ETag after a change: %d, want 200", got)
			}
		}
	}
	// And back: a moderator view cached on a follows a change made on b.
	if n, _ := get(a, mod); n != 1 {
		t.Fatalf("moderator on a: %d flats, want 1", n)
	}
	b.Do(t, "POST", "/flat/create", b.Token(t, authn.RoleClient), map[string]any{"house_id": house, "price": 1, "rooms": 1}).MustOK(t)
	if n, _ := get(a, mod); n != 2 {
		t.Fatalf("moderator on a right after a creation on b: %d flats, want 2", n)
	}
}
