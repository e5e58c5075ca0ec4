// Package throttle keeps one token bucket (golang.org/x/time/rate) per key,
// such as a device id or a client address, in bounded memory. The HTTP
// layer limits requests per device and per address with it; the service
// layer limits failed sign-ins per address.
//
// Time is always passed in, so tests move a clock instead of sleeping.
package throttle

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds a table's buckets when New is given no bound: about
// 100 bytes each, so 10 MiB at most.
const DefaultMaxKeys = 100_000

// sweepEvery is how often Take looks for buckets it can forget.
const sweepEvery = time.Minute

// Table is a set of token buckets, one per key, each refilling at the same
// rate up to the same burst. A nil *Table allows everything, so a disabled
// limit needs no special case at its callers. A Table is safe for
// concurrent use.
type Table struct {
	limit rate.Limit
	burst int
	max   int
	// idle is how long a bucket takes to refill from empty: one unused that
	// long is full, the same as a new one, so forgetting it changes nothing.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a table of buckets refilling perSecond tokens a second up to
// burst, holding at most maxKeys buckets (DefaultMaxKeys when <= 0).
// perSecond and burst must be positive.
func New(perSecond float64, burst, maxKeys int) *Table {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &Table{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		max:     maxKeys,
		idle:    idle + time.Second,
		buckets: make(map[string]*bucket),
	}
}

// Take spends one token of key's bucket at now. It returns 0 when the token
// was there, else how long until one will be (and spends nothing).
func (t *Table) Take(key string, now time.Time) time.Duration {
	wait, _ := t.Hold(key, now)
	return wait
}

// Hold is Take for an attempt that may turn out not to count, such as a
// sign-in whose password proves right: when the token was there, release
// gives it back (less what later takers have already counted on).
// Holding the token while the attempt runs keeps concurrent attempts from
// all finding the same last token.
func (t *Table) Hold(key string, now time.Time) (wait time.Duration, release func()) {
	if t == nil {
		return 0, func() {}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucketLocked(key, now)
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Duration(math.MaxInt64), nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	// CancelAt gives a token back only at the time it was reserved for.
	return 0, func() { r.CancelAt(now) }
}

// Wait reports how long until key's bucket holds a token at now, without
// spending one: 0 when it holds one already.
func (t *Table) Wait(key string, now time.Time) time.Duration {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[key]
	if !ok {
		return 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(t.limit) * float64(time.Second))
}

// Len is the number of buckets held.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}

// bucketLocked finds or makes key's bucket, sweeping first when it is time
// or the table is full.
func (t *Table) bucketLocked(key string, now time.Time) *bucket {
	if b, ok := t.buckets[key]; ok {
		b.seen = now
		return b
	}
	if len(t.buckets) >= t.max || now.Sub(t.lastSweep) >= sweepEvery {
		t.sweepLocked(now)
	}
	if len(t.buckets) >= t.max {
		// Every bucket is in use: forget about a quarter of them, whichever
		// the map yields first. A forgotten bucket starts full again, so its
		// owner gets a fresh burst; only a caller with more distinct keys
		// than max can cause that, and such a caller could spread its
		// requests over that many keys anyway. Memory stays bounded.
		n := 0
		for k := range t.buckets {
			delete(t.buckets, k)
			if n++; n >= t.max/4+1 {
				break
			}
		}
	}
	b := &bucket{lim: rate.NewLimiter(t.limit, t.burst), seen: now}
	t.buckets[key] = b
	return b
}

// sweepLocked forgets the buckets that have refilled since last used.
func (t *Table) sweepLocked(now time.Time) {
	t.lastSweep = now
	for k, b := range t.buckets {
		if now.Sub(b.seen) >= t.idle {
			delete(t.buckets, k)
		}
	}
}

// Seconds is d in whole seconds rounded up, at least 1: the value of a
// Retry-After header, after which a token is surely there.
func Seconds(d time.Duration) int {
	s := int(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	if s < 1 {
		s = 1
	}
	return s
}
