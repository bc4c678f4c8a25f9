package authn

import (
	"sync"
	"time"
)

// verifiedCacheSize bounds the verified-token cache: about 400 bytes an
// entry, so at most ~4 MB.
const verifiedCacheSize = 10_000

// verifiedCache remembers tokens that verified, until they expire. An
// Ed25519 verification costs ~60 µs of CPU, the largest single cost of a
// listing request in the profiles of docs/scaling.md, and a client sends the
// same token with every request of its session. A hit answers what a
// verification would: the key set of a Verifier never changes, the claims
// are signed, and an entry ends when the token's exp (plus the leeway)
// does. Only verified tokens get in, so garbage cannot fill it; when it is
// full, random entries go.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[string]verifiedEntry
	now     func() time.Time
}

type verifiedEntry struct {
	id      Identity
	expires time.Time
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{entries: make(map[string]verifiedEntry), now: time.Now}
}

func (c *verifiedCache) get(token string) (Identity, bool) {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return Identity{}, false
	}
	return e.id, true
}

func (c *verifiedCache) put(token string, id Identity, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries { // map order is random: random eviction
		if len(c.entries) < verifiedCacheSize {
			break
		}
		delete(c.entries, k)
	}
	c.entries[token] = verifiedEntry{id: id, expires: exp.Add(leeway)}
}
