package clientsdk

import "sync"

// Event kinds.
const (
	// EventWarnings: warnings changed (IDs lists them; empty means many).
	EventWarnings = "warnings"
	// EventOps: an op was added or changed state.
	EventOps = "ops"
	// EventSync: a sync started, finished or failed.
	EventSync = "sync"
	// EventAuth: login, logout, token loss or revocation.
	EventAuth = "auth"
)

// Event tells an app's screens what changed.
type Event struct {
	Kind string
	IDs  []string
}

// Progress is where a sync stands, for a progress bar.
type Progress struct {
	// Phase is "push", "photos" or "pull".
	Phase string
	// Pushed of ToPush ops have been answered.
	Pushed, ToPush int
	// Pulled changes so far, and about how many remain.
	Pulled, Remaining int
}

type listeners struct {
	mu       sync.Mutex
	next     int
	change   map[int]func(Event)
	progress map[int]func(Progress)
}

// OnChange calls fn after every change; the returned function stops it.
// fn runs on the goroutine that made the change, possibly while a sync or
// login holds the SDK's sync lock: keep it short, and do not call Sync,
// Login or Logout from it (hand the event to another goroutine instead).
func (c *Client) OnChange(fn func(Event)) (cancel func()) {
	l := &c.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.change == nil {
		l.change = map[int]func(Event){}
	}
	id := l.next
	l.next++
	l.change[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.change, id)
		l.mu.Unlock()
	}
}

// OnProgress calls fn as a sync advances; the returned function stops it.
func (c *Client) OnProgress(fn func(Progress)) (cancel func()) {
	l := &c.listeners
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.progress == nil {
		l.progress = map[int]func(Progress){}
	}
	id := l.next
	l.next++
	l.progress[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.progress, id)
		l.mu.Unlock()
	}
}

func (c *Client) emit(e Event) {
	l := &c.listeners
	l.mu.Lock()
	fns := make([]func(Event), 0, len(l.change))
	for _, fn := range l.change {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

func (c *Client) report(p Progress) {
	l := &c.listeners
	l.mu.Lock()
	fns := make([]func(Progress), 0, len(l.progress))
	for _, fn := range l.progress {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(p)
	}
}
