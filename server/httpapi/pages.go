package httpapi

import (
	"context"
	"runtime"
)

// pageSlots bounds how many pull pages are read and encoded at once. A
// page of 2,000 warnings is several MB of decoded states, MessagePack and
// gzip while it is built; building is CPU work, so fifty at once (a
// thousand phones' first sync of a morning) finish no sooner than a few
// at a time, but held fifty pages in memory at once: the server's
// anonymous memory peaked at 303 MiB that way at 1,000,000 warnings
// (examples/scale). A held pull (wait) waits without a slot and takes
// one to encode a page with changes in it; every pull gives its slot
// back before its bytes go out, so a client slow to read holds none.
type pageSlots chan struct{}

func newPageSlots() pageSlots {
	return make(pageSlots, max(4, 2*runtime.GOMAXPROCS(0)))
}

// take waits for a slot, or for ctx (the client gone).
func (p pageSlots) take(ctx context.Context) error {
	select {
	case p <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p pageSlots) give() { <-p }
