package app

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
)

// tokenCache remembers access tokens already verified, until they expire.
// An Ed25519 verification is most of what a no-change pull costs, and a
// device sends the same token for 15 minutes. Only the signature and claims
// are cached: the device and user are still checked on every request.
type tokenCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]auth.Claims
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[[32]byte]auth.Claims)}
}

func (c *tokenCache) verify(token string, now time.Time, verify func(string) (auth.Claims, error)) (auth.Claims, error) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	claims, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(claims.ExpiresAt) {
		return claims, nil
	}
	claims, err := verify(token)
	if err != nil {
		return claims, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		// Drop about a quarter, oldest or not: map order is random, and
		// a dropped token is only verified again.
		n := 0
		for k := range c.entries {
			delete(c.entries, k)
			if n++; n >= c.max/4 {
				break
			}
		}
	}
	c.entries[key] = claims
	c.mu.Unlock()
	return claims, nil
}

// clear forgets every verified token, after the key set changed.
func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
