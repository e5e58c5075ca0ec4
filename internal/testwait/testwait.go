// Package testwait waits in tests for something to happen, for as long as
// the test binary may run: no fixed deadline that a slow or busy machine
// could outlast. A test that never sees the event fails with its own
// message shortly before go test's -timeout would end the binary.
package testwait

import (
	"testing"
	"time"
)

// margin is left before the binary's deadline to fail with a message
// rather than be ended with a goroutine dump.
const margin = 10 * time.Second

// Deadline is when a wait in tb gives up: shortly before the test binary's
// -timeout, or never when it has none.
func Deadline(tb testing.TB) time.Time {
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			return deadline.Add(-margin)
		}
	}
	return time.Now().Add(100 * 365 * 24 * time.Hour)
}

// Until checks cond every few milliseconds until it holds, and fails tb
// with what as the missing event at Deadline.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := Deadline(tb)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
