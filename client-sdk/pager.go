package clientsdk

import (
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/internal/stall"
)

// Page budget bounds, in encoded bytes of changes (before gzip).
const (
	// minPageBytes still carries a few warnings: a smaller page spends
	// more on its round trip than on its changes.
	minPageBytes = 8 << 10
	// firstPageBytes is the budget before anything is measured: about
	// 20 KB on the wire, 3 s at 50 kbit/s.
	firstPageBytes = 48 << 10
	// maxPageBytes bounds a page on the fastest link: the server's count
	// limit caps it anyway.
	maxPageBytes = 8 << 20
)

// pager sizes pull pages from the link it measures: a page should take
// about target on the link, so a slow link gets small pages (each one
// applied is progress kept) and a fast one large pages (few round trips).
// On a link whose round trips are long, a page takes at least
// idlePerPage round trips' worth, so the wait for each page's answer
// stays a tenth of the sync.
// A page cut part-way tells it how much the link carries before it drops:
// pages stay well under that, so few are cut again.
type pager struct {
	mu     sync.Mutex
	target time.Duration
	budget int
	// ratio is encoded bytes per byte on the wire (gzip), measured.
	ratio float64
	// ceiling is a third of what a connection carried before its last
	// drop, in wire bytes; 0 when no drop was seen. Successes raise it
	// slowly, since a link's drops come and go.
	ceiling int64
}

// idlePerPage: a page takes at least this many times the wait for its
// answer, so the waits cost about a tenth of a sync.
const idlePerPage = 9

func newPager(target time.Duration) *pager {
	return &pager{target: target, budget: firstPageBytes, ratio: 3}
}

// next is the budget of the next page.
func (p *pager) next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.budget
}

// done records a page that arrived whole. full says the budget bounded
// it (more changes were due).
func (p *pager) done(m stall.Meter, full bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.Wire > 0 && m.Bytes > 0 {
		p.ratio = 0.7*p.ratio + 0.3*float64(m.Bytes)/float64(m.Wire)
	}
	p.ceiling += p.ceiling / 16
	if !full {
		return
	}
	b := p.budget * 2
	// A page long enough to time says what the link carries; a shorter
	// one arrived in a burst, and only says the link is faster.
	if d := m.End.Sub(m.Headers); d >= time.Second {
		target := p.target
		if !m.Sent.IsZero() {
			target = max(target, idlePerPage*m.Headers.Sub(m.Sent))
		}
		b = min(b, int(float64(m.Bytes)*float64(target)/float64(d)))
	}
	p.set(b)
}

// cut records a page that failed part-way.
func (p *pager) cut(m stall.Meter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.ConnTotal > 0 {
		c := max(m.ConnTotal/3, 4<<10)
		if p.ceiling == 0 || c < p.ceiling {
			p.ceiling = c
		}
	}
	p.set(p.budget / 2)
}

func (p *pager) set(b int) {
	if p.ceiling > 0 {
		b = min(b, int(float64(p.ceiling)*p.ratio))
	}
	p.budget = max(minPageBytes, min(b, maxPageBytes))
}

// Photo upload chunk bounds.
const (
	minChunkBytes   = 16 << 10
	firstChunkBytes = 32 << 10
	maxChunkBytes   = 2 << 20
)

// chunker sizes the pieces a photo is uploaded in: each takes about
// target on the link, as measured. The server keeps every byte that
// arrives, so a cut costs only the bytes in flight and the round trip that
// asks the server's offset; a piece cut part-way is no loss, while a
// smaller piece costs an idle round trip for its answer (on a link cut
// every 40 KB, pieces that fit a connection left the link idle a third of
// the time). So a cut does not shrink pieces, unless the cut piece left
// nothing on the server: a proxy that holds request bodies until they are
// whole. Then pieces halve, each under what was cut. A piece must also
// finish well inside the stall timeout once the phone's socket buffers
// hold all of it, which the target (10 s by default) keeps.
type chunker struct {
	mu      sync.Mutex
	target  time.Duration
	size    int
	ceiling int
}

func newChunker(target time.Duration) *chunker {
	return &chunker{target: target, size: firstChunkBytes}
}

func (c *chunker) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// done records a piece of n bytes that took d, answer included.
func (c *chunker) done(n int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ceiling += c.ceiling / 16
	s := c.size * 2
	if d >= time.Second {
		s = min(s, int(float64(n)*float64(c.target)/float64(d)))
	}
	c.set(s)
}

// cut records a piece of n bytes that the link cut after the server had
// stored arrived bytes of it.
func (c *chunker) cut(n, arrived int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if arrived > 0 {
		return
	}
	if half := n / 2; c.ceiling == 0 || half < c.ceiling {
		c.ceiling = half
	}
	c.set(c.size / 2)
}

func (c *chunker) set(s int) {
	if c.ceiling > 0 {
		s = min(s, c.ceiling)
	}
	c.size = max(minChunkBytes, min(s, maxChunkBytes))
}
