package netshape

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/pause"
)

// chunkSize is the most one chunk holds: 64 ms at 64 kbit/s, so a slow
// link delivers smoothly rather than in bursts, and CutAfter and DropRate
// act at a fine grain.
const chunkSize = 512

// queueLen is how many chunks of one direction of one connection may wait
// for their delivery time: 128 KB, more than a 2G link's rate times its
// delay, so latency never throttles the rate. With an unlimited rate and a
// delay it caps a connection at 128 KB per delay.
const queueLen = 256

// The two directions, indexing Proxy.sched and conn.pipes.
const (
	up   = 0 // phone to server
	down = 1 // server to phone
)

// conn is one relayed connection. Its fields are guarded by Proxy.mu.
type conn struct {
	p      *Proxy
	client net.Conn
	server net.Conn // nil until dialed
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	// stranded: the phone left the network this connection was made on
	// (Proxy.Strand); it never moves again.
	stranded bool

	// admitted counts the bytes of both directions scheduled for delivery,
	// written those delivered: the CutAfter budget is spent on admission,
	// and the cut happens when the last admitted byte is written.
	admitted, written int64

	// upSinceDown is set when the phone has sent since the server last
	// did: the server's next bytes start an answer.
	upSinceDown bool
	lose        *rand.Rand // draws for LoseAnswers
	pipes       [2]*pipe
}

// pipe is one direction of a conn: a reader stamps each chunk with its
// delivery time and queues it, a writer sleeps until it is due and writes
// it. Chunks are thus in flight together, as on a real link.
type pipe struct {
	c        *conn
	dir      int
	src, dst net.Conn
	q        chan item
	lastDue  time.Time  // of the last queued item: delivery stays in order
	drop     *rand.Rand // draws for DropRate
}

// kind is what an item asks the writer to do.
type kind int

const (
	chunk kind = iota // write data
	eof               // the sender closed its side: close ours (half-close)
	abort             // the sender failed: reset both sides
	lose              // an answer lost: close both sides
	drop              // a flaky link: reset both sides
)

// item is a queued chunk or event with its delivery time.
type item struct {
	kind kind
	data []byte
	due  time.Time
}

func newConn(p *Proxy, client net.Conn, seq uint64) *conn {
	ctx, cancel := context.WithCancel(p.ctx)
	c := &conn{p: p, client: client, ctx: ctx, cancel: cancel}
	// Streams of their own per connection and purpose, so that one
	// connection's draws, or DropRate's, do not shift LoseAnswers' on
	// another.
	seed := uint64(p.seed)
	c.lose = rand.New(rand.NewPCG(seed, seq<<2|2))
	for dir := range c.pipes {
		c.pipes[dir] = &pipe{c: c, dir: dir, q: make(chan item, queueLen), drop: rand.New(rand.NewPCG(seed, seq<<2|uint64(dir)))}
	}
	return c
}

// run dials the target once the link is there, relays both directions
// until they end, and forgets the connection.
func (c *conn) run() {
	p := c.p
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		c.closeLocked(false)
		delete(p.conns, c)
		p.mu.Unlock()
	}()

	// A connection opened into a black hole reaches the server only when
	// the link is back, as a retransmitted SYN would.
	p.mu.Lock()
	ok := c.waitLinkLocked()
	p.mu.Unlock()
	if !ok {
		return
	}
	var d net.Dialer
	server, err := d.DialContext(c.ctx, "tcp", p.target)
	if err != nil {
		// The phone sees what it would see from a server that is down.
		p.mu.Lock()
		c.closeLocked(true)
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		server.Close()
		return
	}
	c.server = server
	p.mu.Unlock()

	c.pipes[up].src, c.pipes[up].dst = c.client, server
	c.pipes[down].src, c.pipes[down].dst = server, c.client
	var wg sync.WaitGroup
	for _, pp := range c.pipes {
		wg.Add(2)
		go func() { defer wg.Done(); pp.read() }()
		go func() { defer wg.Done(); pp.write() }()
	}
	wg.Wait()
}

// waitLinkLocked returns once the connection may move: the link is not a
// black hole and the connection is not stranded; false if the connection
// ends first. The caller holds p.mu, and holds it again on return.
func (c *conn) waitLinkLocked() bool {
	p := c.p
	for p.link.BlackHole || c.stranded {
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-c.ctx.Done():
			p.mu.Lock()
			return false
		}
		p.mu.Lock()
	}
	return c.ctx.Err() == nil
}

// closeLocked closes both sides, with a reset if reset, and wakes the
// connection's goroutines. The caller holds p.mu.
func (c *conn) closeLocked(reset bool) {
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	for _, nc := range []net.Conn{c.client, c.server} {
		if nc == nil {
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok && reset {
			tc.SetLinger(0)
		}
		nc.Close()
	}
}

// maybeCutLocked cuts the connection once it has delivered all of its
// CutAfter budget. The caller holds p.mu.
func (c *conn) maybeCutLocked() {
	n := c.p.link.CutAfter
	if c.closed || n <= 0 || c.admitted < n || c.written != c.admitted {
		return
	}
	c.p.stats.Cuts++
	c.closeLocked(false)
}

// read reads chunks from src and queues them until src ends or the
// connection does.
func (pp *pipe) read() {
	for {
		buf := make([]byte, chunkSize)
		n, err := pp.src.Read(buf)
		if n > 0 && !pp.admit(buf[:n]) {
			return
		}
		if err != nil {
			k := abort
			if errors.Is(err, io.EOF) {
				k = eof
			}
			pp.queueEvent(k)
			return
		}
	}
}

// admit schedules data, or the event the link makes of it, and returns
// whether to read on. It waits out a black hole before, and the sending
// of data after, so a connection has a chunk waiting for the radio only
// while the one before it is sent, and connections share the radio in
// turn.
func (pp *pipe) admit(data []byte) bool {
	c, p := pp.c, pp.c.p
	p.mu.Lock()
	if !c.waitLinkLocked() || c.closed {
		p.mu.Unlock()
		return false
	}
	l := p.link
	now := time.Now()
	delay, bps := l.UpDelay, l.UpBitsPerSec
	if pp.dir == down {
		delay, bps = l.DownDelay, l.DownBitsPerSec
	}

	if l.CutAfter > 0 {
		left := l.CutAfter - c.admitted
		if left <= 0 {
			// The budget is spent (a SetLink lowered it): data read
			// past it is never relayed.
			c.maybeCutLocked()
			p.mu.Unlock()
			return false
		}
		if int64(len(data)) > left {
			data = data[:left]
		}
	}

	// Both draws are made for every answer and chunk, whatever the
	// probabilities, so the n-th draw of a connection is the same
	// number in every run.
	ev := chunk
	if pp.dir == up {
		c.upSinceDown = true
	} else if c.upSinceDown {
		c.upSinceDown = false
		if c.lose.Float64() < l.LoseAnswers {
			ev = lose
		}
	}
	if pp.drop.Float64() < l.DropRate && ev == chunk {
		ev = drop
	}

	it := item{kind: ev, due: now.Add(delay)}
	start := now
	if ev == chunk {
		c.admitted += int64(len(data))
		var end time.Time
		start, end = p.sched[pp.dir].reserve(now, len(data), bps)
		it.data = data
		it.due = end.Add(delay)
	}
	if it.due.Before(pp.lastDue) {
		it.due = pp.lastDue // a shorter delay set since must not reorder
	}
	pp.lastDue = it.due
	p.mu.Unlock()

	select {
	case pp.q <- it:
	case <-c.ctx.Done():
		return false
	}
	if ev != chunk {
		return false
	}
	return pause.Until(c.ctx, start)
}

// queueEvent queues k, after the one-way delay like a FIN or RST.
func (pp *pipe) queueEvent(k kind) {
	c, p := pp.c, pp.c.p
	p.mu.Lock()
	l := p.link
	delay := l.UpDelay
	if pp.dir == down {
		delay = l.DownDelay
	}
	due := time.Now().Add(delay)
	if due.Before(pp.lastDue) {
		due = pp.lastDue
	}
	pp.lastDue = due
	p.mu.Unlock()
	select {
	case pp.q <- item{kind: k, due: due}:
	case <-c.ctx.Done():
	}
}

// write delivers queued items when they are due, until an event ends the
// direction or the connection ends.
func (pp *pipe) write() {
	c, p := pp.c, pp.c.p
	for {
		var it item
		select {
		case it = <-pp.q:
		case <-c.ctx.Done():
			return
		}
		if !pause.Until(c.ctx, it.due) {
			return
		}
		p.mu.Lock()
		if !c.waitLinkLocked() || c.closed {
			p.mu.Unlock()
			return
		}
		switch it.kind {
		case eof:
			p.mu.Unlock()
			if cw, ok := pp.dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		case abort:
			c.closeLocked(true)
			p.mu.Unlock()
			return
		case lose:
			p.stats.LostAnswers++
			c.closeLocked(false)
			p.mu.Unlock()
			return
		case drop:
			p.stats.Drops++
			c.closeLocked(true)
			p.mu.Unlock()
			return
		}
		pp.countLocked(int64(len(it.data)))
		p.mu.Unlock()

		n, err := pp.dst.Write(it.data)

		p.mu.Lock()
		pp.countLocked(int64(n - len(it.data)))
		c.written += int64(n)
		if err != nil {
			c.closeLocked(true)
			p.mu.Unlock()
			return
		}
		c.maybeCutLocked()
		p.mu.Unlock()
	}
}

// countLocked adds n to the direction's byte count. The caller holds p.mu.
func (pp *pipe) countLocked(n int64) {
	if pp.dir == up {
		pp.c.p.stats.BytesUp += n
	} else {
		pp.c.p.stats.BytesDown += n
	}
}
