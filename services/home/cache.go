package home

import (
	"strconv"
	"sync"

	homev1 "github.com/homeservices/homes/gen/homes/home/v1"
)

// DefaultListingCacheFlats is the default budget of the listing cache: the
// flats it may hold in all, about 120 bytes each.
const DefaultListingCacheFlats = 500_000

// listingKey names one listing: a house as clients (approved flats) or as
// moderators (every flat) see it.
type listingKey struct {
	house        int32
	approvedOnly bool
}

// listing is a response ready to send, valid while its house's version is
// version. It is shared by concurrent requests and never modified.
type listing struct {
	version int64
	resp    *homev1.GetHouseFlatsResponse
}

// listingCache keeps the latest listing of recently read houses. It is
// never stale after a commit, on any replica: every read still asks the
// database for the house's version (in the same round trip that would read
// the flats, see store.houseFlats), and every change of a flat bumps that
// version in its own transaction. What a hit saves is the range scan, the
// transfer and the decoding of the flats. The budget counts flats; when it
// is full, random entries go.
type listingCache struct {
	mu       sync.RWMutex
	entries  map[listingKey]listing
	flats    int
	maxFlats int
}

func newListingCache(maxFlats int) *listingCache {
	if maxFlats <= 0 {
		return nil
	}
	return &listingCache{entries: map[listingKey]listing{}, maxFlats: maxFlats}
}

// version is the version of the cached listing of k, -1 when none (house
// versions start at 0). A nil cache holds nothing.
func (c *listingCache) version(k listingKey) (int64, *homev1.GetHouseFlatsResponse) {
	if c == nil {
		return -1, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	l, ok := c.entries[k]
	if !ok {
		return -1, nil
	}
	return l.version, l.resp
}

// put keeps l for k unless a newer version is there already (two misses of
// the same house may finish in any order).
func (c *listingCache) put(k listingKey, l listing) {
	n := weight(l)
	if c == nil || n > c.maxFlats/10 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[k]; ok {
		if old.version >= l.version {
			return
		}
		c.flats -= weight(old)
	}
	c.entries[k] = l
	c.flats += n
	for key, old := range c.entries { // map order is random: random eviction
		if c.flats <= c.maxFlats {
			break
		}
		if key != k {
			c.flats -= weight(old)
			delete(c.entries, key)
		}
	}
}

// weight is what a listing counts against the budget: its flats, at least
// one for the entry itself.
func weight(l listing) int { return max(len(l.resp.GetFlats()), 1) }

// etag is the entity tag of a listing: it changes with the house's version
// and differs between the clients' and the moderators' view. Weak, because
// the same listing is sent in several encodings (REST JSON, Connect, gRPC).
func etag(k listingKey, version int64) string {
	view := "m"
	if k.approvedOnly {
		view = "c"
	}
	return `W/"h` + strconv.FormatInt(int64(k.house), 10) + "." + strconv.FormatInt(version, 10) + "." + view + `"`
}
