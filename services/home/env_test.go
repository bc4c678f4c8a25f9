package home

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	eventsv1 "github.com/homeservices/homes/gen/homes/events/v1"
	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/pkg/authn"
	"github.com/homeservices/homes/pkg/pg/pgtest"
)

// The test stand-in for the JWT interceptor: the caller's role and id travel
// in plain headers.
const (
	roleHeader = "X-Test-Role"
	userHeader = "X-Test-User"
)

type env struct {
	t      *testing.T
	db     *bun.DB
	url    string
	svc    *Service
	mu     sync.Mutex
	events []*eventsv1.FlatStatusChanged
	// fail, when set, makes the hook fail for the events it returns true for.
	fail func(*eventsv1.FlatStatusChanged) bool
}

var errHook = errors.New("outbox is down")

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, db: pgtest.New(t)}
	e.svc = New(e.db, nil, WithFlatChangeHook(e.hook))
	path, h := e.svc.Handler(connect.WithInterceptors(identityFromHeaders()))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func (e *env) hook(ctx context.Context, tx bun.Tx, ev *eventsv1.FlatStatusChanged) error {
	// Prove the hook runs in the change's transaction: it sees the new row.
	var status string
	if err := tx.NewSelect().Table("flats").Column("status").Where("id = ?", ev.GetFlatId()).Scan(ctx, &status); err != nil {
		return err
	}
	if status != ev.GetNewStatus() {
		return errors.New("hook does not see the change")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil && e.fail(ev) {
		return errHook
	}
	e.events = append(e.events, ev)
	return nil
}

func (e *env) recorded() []*eventsv1.FlatStatusChanged {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*eventsv1.FlatStatusChanged(nil), e.events...)
}

func identityFromHeaders() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if role := req.Header().Get(roleHeader); role != "" {
				ctx = authn.WithIdentity(ctx, authn.Identity{UserID: req.Header().Get(userHeader), Role: authn.Role(role)})
			}
			return next(ctx, req)
		}
	}
}

// caller is a client of the service acting as one user.
type caller struct {
	homev1connect.HomeServiceClient
	id string
}

// as returns a client calling with role and a fresh user id; an empty role
// calls without identity.
func (e *env) as(role authn.Role) caller {
	id := uuid.NewString()
	set := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if role != "" {
				req.Header().Set(roleHeader, string(role))
				req.Header().Set(userHeader, id)
			}
			return next(ctx, req)
		}
	})
	return caller{homev1connect.NewHomeServiceClient(http.DefaultClient, e.url, connect.WithInterceptors(set)), id}
}

func (c caller) house(t *testing.T) *homev1.House {
	t.Helper()
	res, err := c.CreateHouse(context.Background(), connect.NewRequest(&homev1.CreateHouseRequest{Address: "Lenina 1", Year: 2000}))
	if err != nil {
		t.Fatalf("create house: %v", err)
	}
	return res.Msg.GetHouse()
}

func (c caller) flat(t *testing.T, houseID int32) *homev1.Flat {
	t.Helper()
	res, err := c.CreateFlat(context.Background(), connect.NewRequest(&homev1.CreateFlatRequest{HouseId: houseID, Price: 1000, Rooms: 2}))
	if err != nil {
		t.Fatalf("create flat: %v", err)
	}
	return res.Msg.GetFlat()
}

func (c caller) update(id int32, status string) (*homev1.Flat, error) {
	res, err := c.UpdateFlat(context.Background(), connect.NewRequest(&homev1.UpdateFlatRequest{Id: id, Status: status}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetFlat(), nil
}

func (c caller) mustUpdate(t *testing.T, id int32, status string) *homev1.Flat {
	t.Helper()
	f, err := c.update(id, status)
	if err != nil {
		t.Fatalf("update flat %d to %q: %v", id, status, err)
	}
	return f
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
}

// flatRowOf reads a flat's status and holder straight from the database.
func (e *env) flatRowOf(id int32) (string, uuid.NullUUID) {
	e.t.Helper()
	var row flatRow
	if err := e.db.NewSelect().Model(&row).Where("id = ?", id).Scan(context.Background()); err != nil {
		e.t.Fatalf("read flat %d: %v", id, err)
	}
	return row.Status, row.ModeratorID
}
