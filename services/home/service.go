package home

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
	"github.com/homeservices/homes/gen/homes/home/v1/homev1connect"
	"github.com/homeservices/homes/pkg/apperr"
	"github.com/homeservices/homes/pkg/authn"
)

// Service is the Connect handler of homes.home.v1.HomeService. It checks the
// caller's role, maps proto to domain and domain errors to codes; the rules
// live in the domain types and the transactions in the store.
type Service struct {
	store *store
	cache *listingCache // nil: no cache
	log   *slog.Logger
	now   func() time.Time
}

var _ homev1connect.HomeServiceHandler = (*Service)(nil)

// Roles says who may call each RPC (API.md). The authentication interceptor
// enforces it before request validation, so a caller with the wrong role
// gets 403 whatever its body; the handlers read the caller through it too.
var Roles = authn.Policy{
	homev1connect.HomeServiceCreateHouseProcedure:   {authn.RoleModerator},
	homev1connect.HomeServiceGetHouseFlatsProcedure: {authn.RoleClient, authn.RoleModerator},
	homev1connect.HomeServiceSubscribeProcedure:     {authn.RoleClient, authn.RoleModerator},
	homev1connect.HomeServiceCreateFlatProcedure:    {authn.RoleClient, authn.RoleModerator},
	homev1connect.HomeServiceUpdateFlatProcedure:    {authn.RoleModerator},
}

// Option configures a Service.
type Option func(*Service)

// WithFlatChangeHook runs hook inside the transaction of every flat creation
// and every real status change (never for a no-op); its error rolls the
// change back.
func WithFlatChangeHook(hook FlatChangeHook) Option {
	return func(s *Service) {
		if hook != nil {
			s.store.hook = hook
		}
	}
}

// WithListingCache sizes the cache of house listings: at most maxFlats
// flats in all (DefaultListingCacheFlats unless set); 0 turns it off. The
// cache is never stale after a commit, on any replica (see listingCache).
func WithListingCache(maxFlats int) Option {
	return func(s *Service) { s.cache = newListingCache(maxFlats) }
}

// New returns the home service on db; log receives the causes of internal
// errors (slog.Default when nil).
func New(db *bun.DB, log *slog.Logger, opts ...Option) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{store: &store{db: db, hook: noHook}, cache: newListingCache(DefaultListingCacheFlats), log: log, now: time.Now}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Handler returns the path and HTTP handler that serve s.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return homev1connect.NewHomeServiceHandler(s, opts...)
}

// CreateHouse adds a house. Moderators only.
func (s *Service) CreateHouse(ctx context.Context, req *connect.Request[homev1.CreateHouseRequest]) (*connect.Response[homev1.CreateHouseResponse], error) {
	if _, err := Roles.Require(ctx, homev1connect.HomeServiceCreateHouseProcedure); err != nil {
		return nil, s.fail(ctx, err)
	}
	var developer *string
	if d := req.Msg.GetDeveloper(); d != nil && d.GetValue() != "" {
		v := d.GetValue()
		developer = &v
	}
	h, err := NewHouse(req.Msg.GetAddress(), req.Msg.GetYear(), developer, s.now())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.createHouse(ctx, h); err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&homev1.CreateHouseResponse{House: houseProto(h)}), nil
}

// GetHouseFlats lists a house's flats by id: every flat for moderators, the
// approved ones for clients. The answer carries an ETag that changes with
// the listing (the house's version), for If-None-Match (pkg/httpcache).
func (s *Service) GetHouseFlats(ctx context.Context, req *connect.Request[homev1.GetHouseFlatsRequest]) (*connect.Response[homev1.GetHouseFlatsResponse], error) {
	id, err := Roles.Require(ctx, homev1connect.HomeServiceGetHouseFlatsProcedure)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := validID("id", req.Msg.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	key := listingKey{house: req.Msg.GetId(), approvedOnly: id.Role != authn.RoleModerator}
	known, cached := s.cache.version(key)
	flats, version, unchanged, err := s.store.houseFlats(ctx, key.house, key.approvedOnly, known)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	msg := cached
	if !unchanged {
		out := make([]*homev1.Flat, len(flats))
		block := make([]homev1.Flat, len(flats)) // one allocation, not one per flat
		for i, f := range flats {
			p := &block[i]
			p.Id, p.HouseId, p.Price, p.Rooms, p.Status, p.Number = f.ID, f.HouseID, f.Price, f.Rooms, string(f.Status), f.Number
			out[i] = p
		}
		msg = &homev1.GetHouseFlatsResponse{Flats: out}
		s.cache.put(key, listing{version: version, resp: msg})
	}
	resp := connect.NewResponse(msg)
	resp.Header().Set("ETag", etag(key, version))
	resp.Header().Set("Cache-Control", "private, no-cache")
	return resp, nil
}

// Subscribe registers an email for a house's new flats; repeating it is a
// no-op.
func (s *Service) Subscribe(ctx context.Context, req *connect.Request[homev1.SubscribeRequest]) (*connect.Response[homev1.SubscribeResponse], error) {
	if _, err := Roles.Require(ctx, homev1connect.HomeServiceSubscribeProcedure); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := validID("id", req.Msg.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	email, err := NormalizeEmail(req.Msg.GetEmail())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.subscribe(ctx, req.Msg.GetId(), email); err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&homev1.SubscribeResponse{}), nil
}

// CreateFlat adds a flat, status created, with the next number of its house.
func (s *Service) CreateFlat(ctx context.Context, req *connect.Request[homev1.CreateFlatRequest]) (*connect.Response[homev1.CreateFlatResponse], error) {
	id, err := Roles.Require(ctx, homev1connect.HomeServiceCreateFlatProcedure)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	f, err := NewFlat(req.Msg.GetHouseId(), req.Msg.GetPrice(), req.Msg.GetRooms())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.createFlat(ctx, f, id.UserID); err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&homev1.CreateFlatResponse{Flat: flatProto(f)}), nil
}

// UpdateFlat moves a flat through moderation (Flat.SetStatus). Moderators
// only.
func (s *Service) UpdateFlat(ctx context.Context, req *connect.Request[homev1.UpdateFlatRequest]) (*connect.Response[homev1.UpdateFlatResponse], error) {
	id, err := Roles.Require(ctx, homev1connect.HomeServiceUpdateFlatProcedure)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	moderator, err := uuid.Parse(id.UserID)
	if err != nil {
		return nil, s.fail(ctx, apperr.Wrap(apperr.Unauthenticated, err, "missing or invalid token"))
	}
	if err := validID("id", req.Msg.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	status, err := ParseStatus(req.Msg.GetStatus())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	f, err := s.store.updateFlat(ctx, req.Msg.GetId(), id.UserID, func(f *Flat) error {
		return f.SetStatus(moderator, status)
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&homev1.UpdateFlatResponse{Flat: flatProto(f)}), nil
}

func (s *Service) fail(ctx context.Context, err error) error {
	return apperr.ToConnect(ctx, s.log, err)
}

func houseProto(h *House) *homev1.House {
	p := &homev1.House{
		Id:        h.ID,
		Address:   h.Address,
		Year:      h.Year,
		CreatedAt: timestamppb.New(h.CreatedAt.UTC()),
		UpdateAt:  timestamppb.New(h.UpdateAt.UTC()),
	}
	if h.Developer != nil {
		p.Developer = wrapperspb.String(*h.Developer)
	}
	return p
}

func flatProto(f *Flat) *homev1.Flat {
	return &homev1.Flat{
		Id:      f.ID,
		HouseId: f.HouseID,
		Price:   f.Price,
		Rooms:   f.Rooms,
		Status:  string(f.Status),
		Number:  f.Number,
	}
}
