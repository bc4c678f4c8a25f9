package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/homeservices/homes/gen/homes/auth/v1/authv1connect"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
)

func TestShortcutsOfTheAPI(t *testing.T) {
	t.Parallel()
	home := shortcutsOf(Service{Name: homev1connect.HomeServiceName}, nil)
	if len(home) != 1 || home[0].pattern != "GET /house/{id}" || home[0].procedure != homev1connect.HomeServiceGetHouseFlatsProcedure {
		t.Fatalf("home shortcuts: %+v", home)
	}
	// GET /dummyLogin takes its field from the query: vanguard's.
	if auth := shortcutsOf(Service{Name: authv1connect.AuthServiceName}, nil); len(auth) != 0 {
		t.Fatalf("auth shortcuts: %+v", auth)
	}
}

func TestCanonicalInt(t *testing.T) {
	t.Parallel()
	i32 := pathVar{bits: 32, signed: true}
	u64 := pathVar{bits: 64}
	for s, want := range map[string]bool{
		"0": true, "1": true, "-1": true, "2147483647": true, "-2147483648": true,
		"2147483648": false, "": false, "-": false, "-0": false, "01": false, "+1": false,
		"1e3": false, " 1": false, "1.0": false, "0x1": false, "١": false,
	} {
		if got := i32.canonicalInt(s); got != want {
			t.Errorf("int32 %q: %v, want %v", s, got, want)
		}
	}
	if !u64.canonicalInt("18446744073709551615") || u64.canonicalInt("-1") || u64.canonicalInt("18446744073709551616") {
		t.Error("uint64 bounds")
	}
}

// fakeHome answers GetHouseFlats from a fixed listing and remembers how
// each call came in.
type fakeHome struct {
	homev1connect.UnimplementedHomeServiceHandler
	mu    sync.Mutex
	types []string
}

func (f *fakeHome) GetHouseFlats(_ context.Context, req *connect.Request[homev1.GetHouseFlatsRequest]) (*connect.Response[homev1.GetHouseFlatsResponse], error) {
	f.mu.Lock()
	f.types = append(f.types, req.Header().Get("Content-Type"))
	f.mu.Unlock()
	if req.Msg.GetId() == 404 {
		return nil, connect.NewError(connect.CodeNotFound, errNotFound)
	}
	resp := connect.NewResponse(&homev1.GetHouseFlatsResponse{Flats: []*homev1.Flat{
		{Id: 1, HouseId: req.Msg.GetId(), Price: 10, Rooms: 2, Status: "approved", Number: 1},
		{Id: 3, HouseId: req.Msg.GetId(), Status: "on \"moderation\"", Number: 2},
	}})
	resp.Header().Set("ETag", `W/"x"`)
	return resp, nil
}

var errNotFound = errors.New("no such house")

func TestShortcutServesLikeTheTranscoder(t *testing.T) {
	t.Parallel()
	fake := &fakeHome{}
	opts, err := HandlerOptions(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	path, h := homev1connect.NewHomeServiceHandler(fake, opts...)
	srv, err := New(DefaultConfig(""), slog.New(slog.NewTextHandler(io.Discard, nil)),
		[]Service{{Name: homev1connect.HomeServiceName, Path: path, Handler: h}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	get := func(path string, header ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set(RequestIDHeader, "rid")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, id := range []string{"7", "404"} {
		fs, fb, fh := get("/house/" + id)
		ss, sb, sh := get("/house/" + id + "?x=1")
		if fs != ss || fb != sb || fh.Get("Content-Type") != sh.Get("Content-Type") || fh.Get("ETag") != sh.Get("ETag") {
			t.Errorf("/house/%s: shortcut %d %s %v; transcoder %d %s %v", id, fs, fb, fh, ss, sb, sh)
		}
	}
	if s, _, _ := get("/house/7", "If-None-Match", `W/"x"`); s != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", s)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	want := []string{"application/" + restCodecName, "application/proto", "application/" + restCodecName, "application/proto", "application/" + restCodecName}
	if len(fake.types) != len(want) {
		t.Fatalf("calls came in as %q, want %q", fake.types, want)
	}
	for i := range want {
		if fake.types[i] != want[i] {
			t.Fatalf("calls came in as %q, want %q", fake.types, want)
		}
	}
}
