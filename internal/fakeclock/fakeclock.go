// Package fakeclock has the clocks tests hand to the store, the server and
// the SDK in place of time.Now, so they can move time instead of waiting.
// Both are safe for concurrent use.
package fakeclock

import (
	"sync"
	"time"
)

// Clock stands still until a test sets or moves it, so every time it gives
// is known.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// At is a clock standing at t.
func At(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Offset runs with the wall clock, ahead by what a test has added: for
// servers whose clock must move on by itself (token lifetimes checked
// against real requests) and jump when a test says.
type Offset struct {
	mu  sync.Mutex
	off time.Duration
}

// Now is the wall clock's time plus the offset.
func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Add moves the clock on by d.
func (c *Offset) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}
