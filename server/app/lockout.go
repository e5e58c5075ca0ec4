package app

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/server/throttle"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Lockout tunes sign-in throttling. Zero fields take the defaults; a
// negative Threshold turns the lockout off, a negative UserThreshold only
// its limit per username across addresses, a negative FailureRate the
// limit per address.
//
// The state is kept in memory: a restart of the server clears every
// lockout. That is acceptable because a restart is rare and an attacker
// cannot cause one, and it keeps a refused sign-in free of any write.
type Lockout struct {
	// Threshold failed sign-ins of one username from one address within
	// Window lock that username for that address (5 in 15 minutes by
	// default). Usernames are easy to guess (cadre-<village code>-1), so
	// a lock of the username everywhere would let anyone keep a cadre
	// out; from another address the cadre still signs in.
	Threshold int
	// UserThreshold failed sign-ins of one username from all addresses
	// together within Window lock it everywhere (50 by default): guesses
	// spread over many addresses are held back too, but it takes ten
	// addresses' worth of failures, which one attacker does not have.
	// It must be above Threshold.
	UserThreshold int
	Window        time.Duration
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
	// MaxKeys bounds the usernames, the username and address pairs, and
	// the addresses remembered (throttle.DefaultMaxKeys each when 0).
	MaxKeys int
}

// Default sign-in throttling.
const (
	DefaultLockoutThreshold     = 5
	DefaultLockoutUserThreshold = 50
	DefaultLockoutWindow        = 15 * time.Minute
	DefaultLockoutDuration      = 15 * time.Minute
	DefaultLockoutMaxDuration   = 4 * time.Hour
	DefaultFailureRate          = 0.1
	DefaultFailureBurst         = 60
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

// signins remembers failed sign-ins per username and address, per
// username, and per address.
//
// A sign-in counts as failed, for all three, from the moment it starts
// until its password is found right, so a burst of concurrent guesses
// cannot all reach the password check before the first of them is
// counted: the one past the threshold locks, whatever its password. A
// locked or throttled sign-in is refused before the user is looked up or
// a password hashed, which saves the argon2 work and answers an unknown
// username exactly as a known one.
type signins struct {
	cfg      Lockout
	now      func() time.Time
	failures *throttle.Table // per address; nil when off

	// exists tells usernames of accounts from others; nil counts every
	// username as an account's. Only room in a full table depends on it.
	exists func(username string) bool

	mu sync.Mutex
	// pairs are keyed by pairKey, users by username (nil when
	// UserThreshold is negative).
	pairs     *lockTable
	users     *lockTable
	lastSweep time.Time
}

// lockTable is the lock state of one kind of key; signins.mu guards it.
type lockTable struct {
	threshold int
	states    map[string]*lockState
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

// pairKey is the key of a username from an address. A NUL is in neither.
func pairKey(username, addr string) string { return username + "\x00" + addr }

func newSignins(cfg Lockout, now func() time.Time) *signins {
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultLockoutThreshold
	}
	if cfg.UserThreshold == 0 {
		cfg.UserThreshold = max(DefaultLockoutUserThreshold, cfg.Threshold+1)
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
	s := &signins{cfg: cfg, now: now, pairs: newLockTable(cfg.Threshold)}
	if cfg.UserThreshold > 0 {
		s.users = newLockTable(cfg.UserThreshold)
	}
	if cfg.FailureRate > 0 {
		s.failures = throttle.New(cfg.FailureRate, cfg.FailureBurst, cfg.MaxKeys)
	}
	return s
}

func newLockTable(threshold int) *lockTable {
	return &lockTable{threshold: threshold, states: make(map[string]*lockState)}
}

// signin is one sign-in under way.
type signin struct {
	s        *signins
	username string // empty when the lockout is off
	pair     string
	refund   func() // gives the address its failure back
}

// begin starts a sign-in for username from the address in ctx, or refuses
// it with rate_limited (details.retry_after in seconds) while the username
// is locked for that address or for all, or the address has failed too
// often.
func (s *signins) begin(ctx context.Context, username string) (signin, error) {
	now := s.now()
	addr := clientFrom(ctx)
	a := signin{s: s, refund: func() {}}
	if addr != "" {
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
	if now.Sub(s.lastSweep) >= time.Minute {
		s.sweepLocked(now)
	}
	// A refused sign-in is refused unchecked: not a failure of the
	// address, nor of the level that did not refuse it.
	var user *lockState
	if s.users != nil {
		st, wait, err := s.users.take(s, username, username, now)
		if err != nil || wait > 0 {
			a.refund()
			return signin{}, orTooMany(err, wait, "too many failed sign-ins for this username")
		}
		user = st
	}
	pair, wait, err := s.pairs.take(s, pairKey(username, addr), username, now)
	if err != nil || wait > 0 {
		a.refund()
		return signin{}, orTooMany(err, wait, "too many failed sign-ins for this username from this network")
	}
	if user != nil {
		user.attempts++
	}
	pair.attempts++
	a.username, a.pair = username, pairKey(username, addr)
	return a, nil
}

// orTooMany is err, or else the rate_limited answer for wait.
func orTooMany(err error, wait time.Duration, what string) error {
	if err != nil {
		return err
	}
	return tooMany(wait, what)
}

// take finds or makes key's state and reports how long it refuses
// sign-ins: a lockout running, or one it starts now that the window holds
// the threshold's attempts. It does not count the attempt: the caller does
// once every level let it through. It refuses with rate_limited when the
// table is full of lockouts (stateLocked).
func (t *lockTable) take(s *signins, key, username string, now time.Time) (*lockState, time.Duration, error) {
	st, ok := t.stateLocked(s, key, username, now)
	if !ok {
		return nil, 0, tooMany(t.firstUnlockLocked(s.cfg.MaxDuration, now), "too many sign-ins are failing on this server")
	}
	st.last = now
	if now.Before(st.lockedUntil) {
		return st, st.lockedUntil.Sub(now), nil
	}
	if now.Sub(st.windowStart) >= s.cfg.Window {
		st.attempts, st.windowStart = 0, now
	}
	if st.attempts >= t.threshold {
		d := s.cfg.Duration
		for i := 0; i < st.strikes && d < s.cfg.MaxDuration; i++ {
			d *= 2
		}
		d = min(d, s.cfg.MaxDuration)
		st.lockedUntil = now.Add(d)
		st.strikes++
		st.attempts, st.windowStart = 0, time.Time{}
		return st, d, nil
	}
	return st, 0, nil
}

// succeeded clears the username's count and past lockouts, from this
// address and from all, and gives the address back the failure it was
// charged when the sign-in began.
func (a signin) succeeded() {
	a.refund()
	if a.username == "" {
		return
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	delete(a.s.pairs.states, a.pair)
	if a.s.users != nil {
		delete(a.s.users.states, a.username)
	}
}

// failed leaves the failure counted: against the username, the pair and
// the address, all charged when the sign-in began.
func (a signin) failed() {}

// clear forgets username's failures and lockouts, from every address: a
// new password ends them.
func (s *signins) clear(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users != nil {
		delete(s.users.states, username)
	}
	prefix := pairKey(username, "")
	for k := range s.pairs.states {
		if strings.HasPrefix(k, prefix) {
			delete(s.pairs.states, k)
		}
	}
}

// stateLocked finds or makes key's state, keeping the table bounded. It
// reports false when the table is full of accounts under lockout: those
// are never forgotten to make room (that would let junk sign-ins lift a
// lockout), so a new key waits until some expire.
func (t *lockTable) stateLocked(s *signins, key, username string, now time.Time) (*lockState, bool) {
	if st, ok := t.states[key]; ok {
		return st, true
	}
	if len(t.states) >= s.cfg.MaxKeys {
		s.sweepLocked(now)
	}
	if len(t.states) >= s.cfg.MaxKeys && !t.evictLocked(s.cfg.MaxKeys, now) {
		return nil, false
	}
	st := &lockState{windowStart: now, account: s.exists == nil || s.exists(username)}
	t.states[key] = st
	return st, true
}

// evictLocked makes room for about a quarter of the table: first keys
// with failures but no lockout ever, then ones whose lockouts are over
// (the doubling of their next lockout is forgotten), then lockouts of
// usernames no account has (lifting one lets nobody in). An account's
// lockout is never forgotten. It reports whether anything was forgotten.
func (t *lockTable) evictLocked(maxKeys int, now time.Time) bool {
	want := maxKeys/4 + 1
	n := 0
	tiers := []func(st *lockState) bool{
		func(st *lockState) bool { return !now.Before(st.lockedUntil) && st.strikes == 0 },
		func(st *lockState) bool { return !now.Before(st.lockedUntil) },
		func(st *lockState) bool { return !st.account },
	}
	for _, evictable := range tiers {
		for k, st := range t.states {
			if !evictable(st) {
				continue
			}
			delete(t.states, k)
			if n++; n >= want {
				return true
			}
		}
	}
	return n > 0
}

// firstUnlockLocked is how long until the first lockout in the table
// ends, making room for a new key.
func (t *lockTable) firstUnlockLocked(longest time.Duration, now time.Time) time.Duration {
	wait := longest
	for _, st := range t.states {
		wait = min(wait, st.lockedUntil.Sub(now))
	}
	return max(wait, time.Second)
}

// sweepLocked forgets keys with nothing left to remember: no lockout
// running, no attempt in the window, and no lockout within strikeMemory.
func (s *signins) sweepLocked(now time.Time) {
	s.lastSweep = now
	for _, t := range []*lockTable{s.pairs, s.users} {
		if t == nil {
			continue
		}
		for k, st := range t.states {
			quiet := s.cfg.Window
			if st.strikes > 0 {
				quiet = strikeMemory
			}
			if !now.Before(st.lockedUntil) && now.Sub(st.last) >= quiet {
				delete(t.states, k)
			}
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
