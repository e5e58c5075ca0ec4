package mobile

import "sync"

// Change kinds passed to Listener.OnChange.
const (
	// ChangeWarnings: warnings changed; ids lists them ("" means many:
	// reload the list).
	ChangeWarnings = "warnings"
	// ChangeOps: ops were added or changed state (ids are op ids).
	ChangeOps = "ops"
	// ChangeSync: a sync finished or failed; read Status.
	ChangeSync = "sync"
	// ChangeAuth: login, logout, a lost session or a revoked device; read
	// Status and CurrentUser.
	ChangeAuth = "auth"
)

// Listener receives what changed, so screens can refresh. An Android app
// implements it in Java or Kotlin, an iOS app in Swift or Objective-C.
//
// Callbacks come one at a time, in order, on a background thread the
// package owns, never on the UI thread: post to it (runOnUiThread,
// DispatchQueue.main.async). A slow callback delays later ones but never
// a sync. Calling the Client from a callback is allowed.
type Listener interface {
	// OnChange says something changed: kind is one of the Change
	// constants, ids a comma-separated list of warning or op ids ("" when
	// it concerns many or none).
	OnChange(kind string, ids string)
	// OnProgress tells where a sync stands: phase is "push", "photos" or
	// "pull"; pushed of toPush ops (or photos) are sent; pulled changes are
	// in and about remaining are still to come. Progress is coalesced: a
	// slow listener sees fewer, never stale, updates.
	OnProgress(phase string, pushed, toPush, pulled, remaining int)
}

// SetListener sets the one listener (nil removes it). Events from before
// the call are not replayed.
func (c *Client) SetListener(l Listener) {
	c.events.set(l)
}

// event is one queued callback.
type event struct {
	progress                          bool
	kind, ids, phase                  string
	pushed, toPush, pulled, remaining int
}

// dispatcher calls the listener from its own goroutine, so the SDK never
// waits for foreign code and a callback may call back into the Client.
type dispatcher struct {
	mu       sync.Mutex
	listener Listener
	queue    []event
	wake     chan struct{}
	quit     chan struct{}
	closed   bool
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), quit: make(chan struct{})}
	go d.loop()
	return d
}

func (d *dispatcher) set(l Listener) {
	d.mu.Lock()
	d.listener = l
	d.queue = nil
	d.mu.Unlock()
}

func (d *dispatcher) change(kind, ids string) {
	d.push(event{kind: kind, ids: ids})
}

func (d *dispatcher) progress(phase string, pushed, toPush, pulled, remaining int) {
	d.push(event{progress: true, phase: phase, pushed: pushed, toPush: toPush, pulled: pulled, remaining: remaining})
}

func (d *dispatcher) push(e event) {
	d.mu.Lock()
	if d.closed || d.listener == nil {
		d.mu.Unlock()
		return
	}
	if n := len(d.queue); e.progress && n > 0 && d.queue[n-1].progress && d.queue[n-1].phase == e.phase {
		d.queue[n-1] = e
	} else {
		d.queue = append(d.queue, e)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop() {
	for {
		select {
		case <-d.quit:
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			if d.closed || len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			e, l := d.queue[0], d.listener
			d.queue = d.queue[1:]
			d.mu.Unlock()
			if e.progress {
				l.OnProgress(e.phase, e.pushed, e.toPush, e.pulled, e.remaining)
			} else {
				l.OnChange(e.kind, e.ids)
			}
		}
	}
}

// close drops what is queued; no callback starts after it returns.
func (d *dispatcher) close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.queue = nil
		close(d.quit)
	}
	d.mu.Unlock()
}
