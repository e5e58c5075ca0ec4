package servertest

import (
	"strings"
	"sync"
)

// Logs collects what a server logs (as the writer of Options.Logger's
// handler, or a command's stderr) for a test to read while the server's
// goroutines may still be writing.
type Logs struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
