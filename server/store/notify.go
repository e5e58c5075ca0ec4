package store

import (
	"sync"
	"time"
)

// Held pulls (long polls). A pull that finds nothing due may wait
// (PullPage.Wait) for a change in its scope. The writer knows which scopes
// a commit wrote index entries into (indexMove notes them); after the
// commit it wakes the pulls held on those scopes only. Each scope has a
// generation: a channel that the next commit touching the scope closes,
// and that the next pull to wait on the scope replaces. A pull subscribes
// before the read that finds nothing, so no commit falls between its read
// and its wait.

// DefaultMaxPullWaiters is how many pulls may be held at once when
// Options.MaxPullWaiters is 0. A held pull costs a goroutine and a
// connection; past the cap a pull answers at once, as without a wait.
const DefaultMaxPullWaiters = 2000

// notifier wakes held pulls. Its zero value is not ready: use newNotifier.
type notifier struct {
	mu      sync.Mutex
	scopes  map[string]*generation
	devices map[string]*hold
	waiting int
	max     int
}

// generation is one wait on a scope: ch is closed by the next commit that
// writes into the scope. subs counts the holds on it, so a scope nobody
// waits on any more is forgotten.
type generation struct {
	ch   chan struct{}
	subs int
}

// hold is one held pull.
type hold struct {
	n      *notifier
	scope  string
	device string
	gen    *generation
	// superseded is closed when the same device holds another pull: a
	// phone that lost its connection and polls again is the live one, and
	// the old request would otherwise keep its place until its wait ends.
	superseded chan struct{}
}

func newNotifier(max int) *notifier {
	if max <= 0 {
		max = DefaultMaxPullWaiters
	}
	return &notifier{scopes: map[string]*generation{}, devices: map[string]*hold{}, max: max}
}

// hold starts holding a pull of device on scope, or reports false when as
// many pulls as allowed are held already.
func (n *notifier) hold(scope, device string) (*hold, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiting >= n.max {
		return nil, false
	}
	h := &hold{n: n, scope: scope, device: device, superseded: make(chan struct{})}
	if old := n.devices[device]; old != nil {
		close(old.superseded)
	}
	n.devices[device] = h
	n.waiting++
	h.gen = n.subscribe(scope)
	return h, true
}

// subscribe returns scope's current generation, counting a holder on it.
// Callers hold n.mu.
func (n *notifier) subscribe(scope string) *generation {
	g := n.scopes[scope]
	if g == nil {
		g = &generation{ch: make(chan struct{})}
		n.scopes[scope] = g
	}
	g.subs++
	return g
}

// unsubscribe drops a holder of g, and g itself once nobody holds it.
// Callers hold n.mu.
func (n *notifier) unsubscribe(scope string, g *generation) {
	g.subs--
	if g.subs == 0 && n.scopes[scope] == g {
		delete(n.scopes, scope)
	}
}

// changed is closed when a commit writes into the hold's scope.
func (h *hold) changed() <-chan struct{} { return h.gen.ch }

// renew moves the hold to its scope's next generation, after a wake and
// before the read that follows it.
func (h *hold) renew() {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.n.unsubscribe(h.scope, h.gen)
	h.gen = h.n.subscribe(h.scope)
}

// end stops holding.
func (h *hold) end() {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unsubscribe(h.scope, h.gen)
	n.waiting--
	if n.devices[h.device] == h {
		delete(n.devices, h.device)
	}
}

// wake ends the current generation of each of scopes: the pulls held on
// them read again. Called after the commit that wrote into them.
func (n *notifier) wake(scopes map[string]struct{}) {
	if len(scopes) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range scopes {
		if g := n.scopes[s]; g != nil {
			close(g.ch)
			delete(n.scopes, s)
		}
	}
}

// held is how many pulls are held now.
func (n *notifier) held() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waiting
}

// PullsWaiting is how many pulls are held now, waiting for a change in
// their scope: for a gauge.
func (s *Store) PullsWaiting() int { return s.notify.held() }

// defaultPullTimer is the timer of a held pull's wait.
func defaultPullTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// wakeAll ends the current generation of every scope: after the whole
// state was replaced (InstallSnapshot), any held pull may have changes.
func (n *notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s, g := range n.scopes {
		close(g.ch)
		delete(n.scopes, s)
	}
}
