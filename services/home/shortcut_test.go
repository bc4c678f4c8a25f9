package home_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/homeservices/homes/internal/app/apptest"
	"github.com/homeservices/homes/pkg/authn"
)

// TestRESTShortcutMatchesTranscoder: GET /house/{id} is served by
// pkg/server's REST shortcut (a direct Connect call in the contract's JSON)
// instead of vanguard's transcoder. Whatever the caller, house and outcome,
// both must answer the same status, headers and body, byte for byte. A query
// string sends a request to the transcoder (vanguard ignores unknown query
// parameters), which gives the reference answer.
func TestRESTShortcutMatchesTranscoder(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t)
	mod := in.Token(t, authn.RoleModerator)
	client := in.Token(t, authn.RoleClient)

	house := in.Do(t, "POST", "/house/create", mod, map[string]any{"address": "1 Shortcut St", "year": 2001}).MustOK(t).Num(t, "id")
	empty := in.Do(t, "POST", "/house/create", mod, map[string]any{"address": "2 Empty St", "year": 2002}).MustOK(t).Num(t, "id")
	var ids []int
	for i := range 6 {
		ids = append(ids, in.Do(t, "POST", "/flat/create", client,
			map[string]any{"house_id": house, "price": 1000 * i, "rooms": 1 + i%4}).MustOK(t).Num(t, "id"))
	}
	// Every status: created, on moderation, approved, declined.
	for _, id := range ids[1:] {
		in.Do(t, "POST", "/flat/update", mod, map[string]any{"id": id, "status": "on moderation"}).MustOK(t)
	}
	for _, id := range ids[2:4] {
		in.Do(t, "POST", "/flat/update", mod, map[string]any{"id": id, "status": "approved"}).MustOK(t)
	}
	in.Do(t, "POST", "/flat/update", mod, map[string]any{"id": ids[4], "status": "declined"}).MustOK(t)

	// A listing larger than net/http's buffers (~75 bytes a flat).
	big := in.Do(t, "POST", "/house/create", mod, map[string]any{"address": "3 Big St", "year": 2003}).MustOK(t).Num(t, "id")
	for i := range 80 {
		in.Do(t, "POST", "/flat/create", mod, map[string]any{"house_id": big, "price": 1_000_000 + i, "rooms": 1 + i%9}).MustOK(t)
	}

	h := strconv.Itoa(house)
	etag := in.Do(t, "GET", "/house/"+h, client, nil).MustOK(t).Header.Get("ETag")
	cases := []struct {
		name, id, token string
		header          map[string]string
		status          int
	}{
		{"client", h, client, nil, 200},
		{"moderator", h, mod, nil, 200},
		{"empty house", strconv.Itoa(empty), client, nil, 200},
		{"gzip", h, mod, map[string]string{"Accept-Encoding": "gzip"}, 200},
		{"big listing", strconv.Itoa(big), mod, nil, 200},
		{"big listing gzip", strconv.Itoa(big), mod, map[string]string{"Accept-Encoding": "gzip"}, 200},
		{"current etag", h, client, map[string]string{"If-None-Match": etag}, 304},
		{"etag of the other view", h, mod, map[string]string{"If-None-Match": etag}, 200},
		{"no such house", "2147483647", client, nil, 404},
		{"id 0", "0", client, nil, 400},
		{"negative id", "-4", client, nil, 400},
		{"not a number", "abc", client, nil, 400},
		{"out of range", "2147483648", client, nil, 400},
		{"no token", h, "", nil, 401},
		{"bad token", h, "not.a.token", nil, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fast := rawGet(t, in, "/house/"+c.id, c.token, c.header)
			slow := rawGet(t, in, "/house/"+c.id+"?via=transcoder", c.token, c.header)
			if fast.status != c.status {
				t.Fatalf("shortcut: status %d, want %d: %s", fast.status, c.status, fast.body)
			}
			if fast.status != slow.status || !bytes.Equal(fast.body, slow.body) {
				t.Fatalf("shortcut %d %s\ntranscoder %d %s", fast.status, fast.body, slow.status, slow.body)
			}
			if !slices.Equal(fast.headers, slow.headers) {
				t.Fatalf("headers differ:\nshortcut   %q\ntranscoder %q", fast.headers, slow.headers)
			}
		})
	}
	// The moderator sees every flat, the client the approved ones, in order.
	var got []string
	for _, f := range in.Do(t, "GET", "/house/"+h, client, nil).MustOK(t).JSON["flats"].([]any) {
		got = append(got, f.(map[string]any)["status"].(string))
	}
	if want := []string{"approved", "approved"}; !slices.Equal(got, want) {
		t.Fatalf("client sees %v, want %v", got, want)
	}
	if n := len(in.Do(t, "GET", "/house/"+h, mod, nil).MustOK(t).JSON["flats"].([]any)); n != 6 {
		t.Fatalf("moderator sees %d flats, want 6", n)
	}
}

type rawAnswer struct {
	status  int
	headers []string // "Name: value", sorted, Date left out
	body    []byte   // decompressed
}

func rawGet(t *testing.T, in *apptest.Instance, path, token string, header map[string]string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest("GET", in.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "shortcut-test") // the same id in both error bodies
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.HTTP1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var rd io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if rd, err = gzip.NewReader(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	a := rawAnswer{status: resp.StatusCode, body: body}
	for k, vs := range resp.Header {
		if k == "Date" || (k == "Content-Length" && resp.Header.Get("Content-Encoding") == "gzip") {
			continue // gzip output may differ in length between writers
		}
		a.headers = append(a.headers, k+": "+strings.Join(vs, ", "))
	}
	slices.Sort(a.headers)
	return a
}
