package authn

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

func TestVerifiedTokensAreCachedUntilExpiry(t *testing.T) {
	t.Parallel()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigner(key, "iss", "aud", time.Minute)
	v := NewVerifier("iss", "aud", pub)
	tok, err := s.Sign(Identity{UserID: "8d6f3a52-6b4e-4f8a-9a39-3f0c2b5f1d10", Role: RoleClient})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := v.cache.get(tok); !ok || got != id {
		t.Fatalf("verified token not cached: %v %v", got, ok)
	}
	if _, err := v.Verify(tok + "x"); err == nil {
		t.Fatal("a tampered token verified")
	}
	if _, ok := v.cache.get(tok + "x"); ok {
		t.Fatal("a token that failed got cached")
	}
	// Past exp plus the leeway, the entry is gone and the parser refuses.
	v.cache.now = func() time.Time { return time.Now().Add(time.Minute + leeway + time.Second) }
	if _, ok := v.cache.get(tok); ok {
		t.Fatal("cached past its expiry")
	}
	for i := range verifiedCacheSize + 10 {
		v.cache.put(string(rune(i))+"t", id, time.Now().Add(time.Hour))
	}
	if n := len(v.cache.entries); n > verifiedCacheSize {
		t.Fatalf("cache grew to %d entries", n)
	}
}
