// Package pause waits for a while unless a context ends first: the sleeps
// of the shaping proxy and of the example programs, which must stop at
// once when their work is cancelled.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends, whose error it then returns. A d of
// zero or less returns at once.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Until waits until t and reports whether ctx was still live by then.
func Until(ctx context.Context, t time.Time) bool {
	return For(ctx, time.Until(t)) == nil
}
