package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/server/throttle"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Lockout tunes sign-in throttling. Zero fields take the defaults; a
// negative Threshold turns the lockout per username off, a negative
// FailureRate the limit per address.
//
// The state is kept in memory: a restart of the server clears every
// lockout. That is acceptable because a restart is rare and an attacker
// cannot cause one, and it keeps a refused sign-in free of any write.
type Lockout struct {
	// Threshold failed sign-ins for one username within Window lock it
	// (5 in 15 minutes by default).
	Threshold int
	Window    time.Duration
	// Duration is the first lockout (15 minutes); each further one in a
	// row doubles it, up to MaxDuration (4 hours).
	Duration    time.Duration
	MaxDuration time.Duration
	// FailureRate and FailureBurst limit failed sign-ins per client
	// address, across usernames, against password spraying: 60 at once,
	// then one every 10 seconds. Many villages' phones can share one
	// carrier-grade NAT address, and a first day of sign-ins with typos
	// stays well under that.
	FailureRate  float64
	FailureBurst int
	// MaxKeys bounds the usernames and the addresses remembered
	// (throttle.DefaultMaxKeys each when 0).
	MaxKeys int
}

// Default sign-in throttling.
const (
	DefaultLockoutThreshold   = 5
	DefaultLockoutWindow      = 15 * time.Minute
	DefaultLockoutDuration    = 15 * time.Minute
	DefaultLockoutMaxDuration = 4 * time.Hour
	DefaultFailureRate        = 0.1
	DefaultFailureBurst       = 60
)

// strikeMemory is how long after its last attempt a username's past
// lockouts still double the next one.
const strikeMemory = 24 * time.Hour

type clientKey struct{}

// WithClient returns ctx carrying the caller's network address (or the key
// of its network, such as an IPv6 /64), which Login uses to limit failed
// sign-ins per address. The HTTP layer sets it on every request.
func WithClient(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

func clientFrom(ctx context.Context) string {
	addr, _ := ctx.Value(clientKey{}).(string)
	return addr
}

// signins remembers failed sign-ins per username and per address.
//
// A sign-in counts as failed, for its username and its address, from the
// moment it starts until its password is found right, so a burst of
// concurrent guesses cannot all reach the password check before the first
// of them is counted: the one past the threshold locks the username,
// whatever its password. A locked or
// throttled sign-in is refused before the user is looked up or a password
// hashed, which saves the argon2 work and answers an unknown username
// exactly as a known one.
type signins struct {
	cfg      Lockout
	now      func() time.Time
	failures *throttle.Table // per address; nil when off

	// exists tells usernames of accounts from others; nil counts every
	// username as an account's. Only room in a full table depends on it.
	exists func(username string) bool

	mu        sync.Mutex
	users     map[string]*lockState
	lastSweep time.Time
}

type lockState struct {
	attempts    int       // in the window, not known to have succeeded
	windowStart time.Time // the window's first attempt
	lockedUntil time.Time
	strikes     int // lockouts in a row, each doubling the next
	last        time.Time
	// account: the username is an account's. A lockout of one that is
	// not protects nothing, so it may be forgotten to make room.
	account bool
}

func newSignins(cfg Lockout, now func() time.Time) *signins {
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultLockoutThreshold
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultLockoutWindow
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultLockoutDuration
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultLockoutMaxDuration
	}
	cfg.MaxDuration = max(cfg.MaxDuration, cfg.Duration)
	if cfg.FailureRate == 0 {
		cfg.FailureRate = DefaultFailureRate
	}
	if cfg.FailureBurst <= 0 {
		cfg.FailureBurst = DefaultFailureBurst
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = throttle.DefaultMaxKeys
	}
	s := &signins{cfg: cfg, now: now, users: make(map[string]*lockState)}
	if cfg.FailureRate > 0 {
		s.failures = throttle.New(cfg.FailureRate, cfg.FailureBurst, cfg.MaxKeys)
	}
	return s
}

// signin is one sign-in under way.
type signin struct {
	s        *signins
	username string // empty when the lockout is off
	refund   func() // gives the address its failure back
}

// begin starts a sign-in for username from the address in ctx, or refuses
// it with rate_limited (details.retry_after in seconds) while the username
// is locked or the address has failed too often.
func (s *signins) begin(ctx context.Context, username string) (signin, error) {
	now := s.now()
	a := signin{s: s, refund: func() {}}
	if addr := clientFrom(ctx); addr != "" {
		wait, refund := s.failures.Hold(addr, now)
		if wait > 0 {
			return signin{}, tooMany(wait, "too many failed sign-ins from this network")
		}
		a.refund = refund
	}
	if s.cfg.Threshold < 0 {
		return a, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stateLocked(username, now)
	if !ok {
		a.refund()
		return signin{}, tooMany(s.firstUnlockLocked(now), "too many sign-ins are failing on this server")
	}
	st.last = now
	if now.Before(st.lockedUntil) {
		a.refund() // refused unchecked: not a failure of the address
		return signin{}, tooMany(st.lockedUntil.Sub(now), "too many failed sign-ins for this username")
	}
	if now.Sub(st.windowStart) >= s.cfg.Window {
		st.attempts, st.windowStart = 0, now
	}
	if st.attempts >= s.cfg.Threshold {
		d := s.cfg.Duration
		for i := 0; i < st.strikes && d < s.cfg.MaxDuration; i++ {
			d *= 2
		}
		d = min(d, s.cfg.MaxDuration)
		st.lockedUntil = now.Add(d)
		st.strikes++
		st.attempts, st.windowStart = 0, time.Time{}
		a.refund()
		return signin{}, tooMany(d, "too many failed sign-ins for this username")
	}
	st.attempts++
	a.username = username
	return a, nil
}

// succeeded clears the username's count and past lockouts, and gives the
// address back the failure it was charged when the sign-in began.
func (a signin) succeeded() {
	a.refund()
	if a.username != "" {
		a.s.clear(a.username)
	}
}

// failed leaves the failure counted: against the username and the
// address, both charged when the sign-in began.
func (a signin) failed() {}

// clear forgets username's failures and lockout.
func (s *signins) clear(username string) {
	s.mu.Lock()
	delete(s.users, username)
	s.mu.Unlock()
}

// stateLocked finds or makes username's state, keeping the map bounded. It
// reports false when the map is full of accounts under lockout: those are
// never forgotten to make room (that would let junk sign-ins lift a
// lockout), so a new username waits until some expire.
func (s *signins) stateLocked(username string, now time.Time) (*lockState, bool) {
	if st, ok := s.users[username]; ok {
		return st, true
	}
	if len(s.users) >= s.cfg.MaxKeys || now.Sub(s.lastSweep) >= time.Minute {
		s.sweepLocked(now)
	}
	if len(s.users) >= s.cfg.MaxKeys && !s.evictLocked(now) {
		return nil, false
	}
	st := &lockState{windowStart: now, account: s.exists == nil || s.exists(username)}
	s.users[username] = st
	return st, true
}

// evictLocked makes room for about a quarter of the map: first usernames
// with failures but no lockout ever, then ones whose lockouts are over (the
// doubling of their next lockout is forgotten), then lockouts of usernames
// no account has (lifting one lets nobody in). An account's lockout is
// never forgotten. It reports whether anything was forgotten.
func (s *signins) evictLocked(now time.Time) bool {
	want := s.cfg.MaxKeys/4 + 1
	n := 0
	tiers := []func(st *lockState) bool{
		func(st *lockState) bool { return !now.Before(st.lockedUntil) && st.strikes == 0 },
		func(st *lockState) bool { return !now.Before(st.lockedUntil) },
		func(st *lockState) bool { return !st.account },
	}
	for _, evictable := range tiers {
		for k, st := range s.users {
			if !evictable(st) {
				continue
			}
			delete(s.users, k)
			if n++; n >= want {
				return true
			}
		}
	}
	return n > 0
}

// firstUnlockLocked is how long until the first lockout in the map ends,
// making room for a new username.
func (s *signins) firstUnlockLocked(now time.Time) time.Duration {
	wait := s.cfg.MaxDuration
	for _, st := range s.users {
		wait = min(wait, st.lockedUntil.Sub(now))
	}
	return max(wait, time.Second)
}

// sweepLocked forgets usernames with nothing left to remember: no lockout
// running, no attempt in the window, and no lockout within strikeMemory.
func (s *signins) sweepLocked(now time.Time) {
	s.lastSweep = now
	for k, st := range s.users {
		quiet := s.cfg.Window
		if st.strikes > 0 {
			quiet = strikeMemory
		}
		if !now.Before(st.lockedUntil) && now.Sub(st.last) >= quiet {
			delete(s.users, k)
		}
	}
}

// tooMany is the rate_limited answer to a refused sign-in. It says nothing
// of whether the account exists: unknown usernames lock the same way.
func tooMany(wait time.Duration, what string) *syncproto.Error {
	secs := throttle.Seconds(wait)
	return syncproto.Errorf(syncproto.CodeRateLimited, "%s; try again in %s", what, inWords(secs)).With("retry_after", secs)
}

func inWords(secs int) string {
	switch {
	case secs <= 1:
		return "a second"
	case secs < 120:
		return fmt.Sprintf("%d seconds", secs)
	}
	return fmt.Sprintf("%d minutes", (secs+59)/60)
}
