package home

import (
	"testing"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
)

func listingOf(n int) *homev1.GetHouseFlatsResponse {
	r := &homev1.GetHouseFlatsResponse{}
	for i := range n {
		r.Flats = append(r.Flats, &homev1.Flat{Id: int32(i + 1)})
	}
	return r
}

func TestListingCacheKeepsNewestWithinBudget(t *testing.T) {
	t.Parallel()
	c := newListingCache(100)
	k := listingKey{house: 1, approvedOnly: true}
	if v, _ := c.version(k); v != -1 {
		t.Fatalf("empty cache has version %d", v)
	}
	c.put(k, listing{version: 3, resp: listingOf(2)})
	c.put(k, listing{version: 2, resp: listingOf(1)}) // a slower, older miss
	if v, r := c.version(k); v != 3 || len(r.GetFlats()) != 2 {
		t.Fatalf("got version %d with %d flats, want the newer 3 with 2", v, len(r.GetFlats()))
	}
	if v, _ := c.version(listingKey{house: 1}); v != -1 {
		t.Fatalf("the moderators' view shares the clients' entry (version %d)", v)
	}
	c.put(listingKey{house: 2}, listing{version: 0, resp: listingOf(50)}) // over a tenth of the budget
	if v, _ := c.version(listingKey{house: 2}); v != -1 {
		t.Fatal("a listing above a tenth of the budget was kept")
	}
	for h := int32(10); h < 200; h++ {
		c.put(listingKey{house: h}, listing{version: 1, resp: listingOf(5)})
	}
	if c.flats > c.maxFlats || len(c.entries) == 0 {
		t.Fatalf("cache holds %d flats in %d entries, budget %d", c.flats, len(c.entries), c.maxFlats)
	}
	var nilCache *listingCache
	nilCache.put(k, listing{resp: listingOf(1)})
	if v, _ := nilCache.version(k); v != -1 {
		t.Fatal("a nil cache remembered something")
	}
}

func TestETagNamesHouseVersionAndView(t *testing.T) {
	t.Parallel()
	if got := etag(listingKey{house: 7, approvedOnly: true}, 12); got != `W/"h7.12.c"` {
		t.Errorf("client etag %s", got)
	}
	if got := etag(listingKey{house: 7}, 12); got != `W/"h7.12.m"` {
		t.Errorf("moderator etag %s", got)
	}
}
