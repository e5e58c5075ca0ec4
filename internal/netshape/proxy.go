package netshape

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/pause"
)

// Stats counts what the proxy did since Listen or the last ResetStats.
// Each count is taken before the event can be seen from outside: a byte
// is counted before it is written to its receiver (and uncounted if the
// write fails), a cut, drop or lost answer before the connection is
// closed. So a test that has read a response or seen a connection end
// finds it counted, with no wait.
type Stats struct {
	// BytesUp and BytesDown are the bytes written to the server and to
	// the phone.
	BytesUp, BytesDown int64
	// Conns is the connections accepted, refused ones included.
	Conns int64
	// Cuts is the connections closed by Link.CutAfter.
	Cuts int64
	// LostAnswers is the answers not relayed because of Link.LoseAnswers.
	LostAnswers int64
	// Drops is the connections reset by Link.DropRate.
	Drops int64
	// Refused is the connections reset because of Link.Refuse: new ones
	// at once, open ones when it was set.
	Refused int64
}

// Proxy relays TCP connections from a 127.0.0.1 port to a target through
// an emulated Link. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	seed   int64
	ctx    context.Context // cancelled by Close; every connection's parent
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	// mu guards everything below, and every conn's fields: one lock keeps
	// the counters exact and the link one value for all connections.
	mu      sync.Mutex
	link    Link
	changed chan struct{} // closed and replaced by SetLink, to wake the stalled
	sched   [2]scheduler  // per direction: the radio is shared
	stats   Stats
	conns   map[*conn]struct{}
	seq     uint64 // connections accepted since Listen; seeds their randomness
	closed  bool
}

// Listen starts a proxy on 127.0.0.1 at a free port, forwarding to target
// (host:port) through l. seed fixes the random choices of LoseAnswers and
// DropRate: the n-th connection draws the same numbers in every run.
func Listen(target string, l Link, seed int64) (*Proxy, error) {
	return ListenOn("127.0.0.1:0", target, l, seed)
}

// ListenOn is Listen on the address addr, for a proxy that a phone
// emulator or another program must find at a known port.
func ListenOn(addr, target string, l Link, seed int64) (*Proxy, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("netshape: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netshape: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:      ln,
		target:  target,
		seed:    seed,
		ctx:     ctx,
		cancel:  cancel,
		link:    l,
		changed: make(chan struct{}),
		conns:   make(map[*conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is http:// and Addr, for an HTTP client or the SDK.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Link is the link now in effect.
func (p *Proxy) Link() Link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}

// SetLink changes the link at once, for open connections too: chunks read
// from now on use the new rates and delays and draw against the new
// probabilities; a black hole stalls chunks already in flight until it
// ends; Refuse resets every open connection; a CutAfter that an open
// connection has already reached cuts it. Chunks already scheduled keep
// their delivery times.
func (p *Proxy) SetLink(l Link) error {
	if err := l.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.link = l
	close(p.changed)
	p.changed = make(chan struct{})
	for c := range p.conns {
		if l.Refuse {
			if !c.closed {
				p.stats.Refused++
				c.closeLocked(true)
			}
			continue
		}
		c.maybeCutLocked()
	}
	return nil
}

// Strand strands every open connection, as when the phone moves to
// another network (a new address): they neither move nor close again,
// whatever the link does later, as TCP connections whose packets go to an
// address the phone no longer has. Only the phone giving them up ends
// them. Connections opened after are not stranded.
func (p *Proxy) Strand() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.stranded = true
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Stats is what the proxy has done since Listen or ResetStats.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// ResetStats sets every count to zero, so a test can measure one phase.
// It does not change which random numbers later connections draw.
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = Stats{}
}

// Close stops accepting, closes every connection and returns when every
// goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for c := range p.conns {
		c.closeLocked(false)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.cancel()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("netshape: close: %w", err)
	}
	return nil
}

// accept runs until Close, starting a connection's goroutines for each
// accepted one.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// Out of descriptors and the like pass: wait a little rather
			// than spin, as net/http does.
			if !pause.Until(p.ctx, time.Now().Add(10*time.Millisecond)) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			nc.Close()
			return
		}
		p.stats.Conns++
		p.seq++
		if p.link.Refuse {
			p.stats.Refused++
			reset(nc)
			p.mu.Unlock()
			continue
		}
		c := newConn(p, nc, p.seq)
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// scheduler is one direction of the radio: each chunk, whatever its
// connection, is sent after the one before.
type scheduler struct {
	next time.Time // when the link is free again
}

// reserve books n bytes at bps bits per second from now or when the link
// is free, whichever is later, and returns when their sending starts and
// ends. An unlimited rate books nothing.
func (s *scheduler) reserve(now time.Time, n, bps int) (start, end time.Time) {
	if bps <= 0 {
		return now, now
	}
	start = now
	if s.next.After(now) {
		start = s.next
	}
	// Rounded up, so the link is never faster than its rate and a lower
	// bound on a transfer's time holds to the nanosecond.
	bits := int64(n) * 8 * int64(time.Second)
	end = start.Add(time.Duration((bits + int64(bps) - 1) / int64(bps)))
	s.next = end
	return start, end
}

// reset closes nc with a TCP reset rather than a FIN, as a link that
// fails does: the peer's next read or write fails at once.
func reset(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}
