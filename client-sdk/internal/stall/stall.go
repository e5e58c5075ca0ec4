// Package stall gives HTTP requests a timeout that counts stalls, not
// total time. On a 2G link a page of changes or a photo can take minutes
// while it keeps moving; a fixed timeout cuts it every time and the work
// starts again from zero. Here a request fails only when no byte has moved
// in either direction for the stall limit (plus, while the answer is
// awaited, the time the server was asked to hold it: a long poll).
//
// The transport also measures each answer (when its headers came, when its
// body ended, how many bytes it carried) for the caller that asks, so the
// SDK can size the next page to the link it really has.
package stall

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStalled is the cause of a request cut for making no progress.
var ErrStalled = errors.New("the link stalled: no bytes moved")

// Transport wraps Base with the stall watchdog.
type Transport struct {
	// Base carries the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Limit is how long a request may go without a byte moving.
	Limit time.Duration
	// Now is the clock of the measurements; time.Now when nil.
	Now func() time.Time
}

// CloseIdleConnections closes Base's idle connections, when it keeps any.
func (t *Transport) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(closer); ok {
		c.CloseIdleConnections()
	}
}

// Meter receives the measurements of one request's answer.
type Meter struct {
	// Sent is when the request was written; Headers when the answer's
	// headers arrived (Headers-Sent is a round trip and the server's
	// work); End when its body was read to the end (zero if it never
	// was).
	Sent, Headers, End time.Time
	// Bytes is the body bytes read, after any decompression the base
	// transport did.
	Bytes int64
	// Wire is the bytes read from the connection while this request was
	// on it: the answer as the link carried it, headers and compression
	// included. ConnTotal is all the connection had read when the request
	// ended or failed: on a link that drops every so many bytes, what it
	// carries before a drop. Both stay 0 unless the connection came from
	// Dial.
	Wire, ConnTotal int64

	conn *countingConn
	base int64
}

// finish records the connection's counts at the end of the request.
func (m *Meter) finish() {
	if m.conn == nil {
		return
	}
	m.ConnTotal = m.conn.read.Load()
	m.Wire = m.ConnTotal - m.base
}

type ctxKey int

const (
	keyWait ctxKey = iota
	keyMeter
)

// WithWait tells the transport that the server may hold this request for
// d before it answers (a long poll): the wait for the headers gets d more.
func WithWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, keyWait, d)
}

// WithMeter asks the transport to fill m for the request made with ctx.
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, keyMeter, m)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Limit <= 0 {
		return base.RoundTrip(req)
	}
	now := t.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	wait, _ := req.Context().Value(keyWait).(time.Duration)
	w := newWatchdog(t.Limit, cancel)
	// Until the request is written, its body moving is progress; once it
	// is, the server works (and may hold a long poll) before answering.
	w.arm(t.Limit)
	m, _ := req.Context().Value(keyMeter).(*Meter)
	var sent atomic.Int64
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			conn := info.Conn
			if tc, ok := conn.(*tls.Conn); ok {
				conn = tc.NetConn()
			}
			if cc, ok := conn.(*countingConn); ok && m != nil {
				m.conn, m.base = cc, cc.read.Load()
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			w.arm(t.Limit + wait)
			// The transport's writer runs this, maybe after the answer
			// came: the meter takes it when the headers do.
			sent.Store(now().UnixNano())
		},
	})
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &watchedBody{ReadCloser: req.Body, w: w, limit: t.Limit}
	}
	resp, err := base.RoundTrip(out)
	if err != nil {
		w.stop()
		if m != nil {
			m.finish()
		}
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, ErrStalled) {
			return nil, fmt.Errorf("%w for %s: %w", ErrStalled, t.Limit, err)
		}
		return nil, err
	}
	w.arm(t.Limit)
	if m != nil {
		m.Headers = now()
		if at := sent.Load(); at != 0 {
			m.Sent = time.Unix(0, at)
		}
	}
	resp.Body = &watchedResponse{body: resp.Body, w: w, cancel: cancel, ctx: ctx, m: m, now: now, limit: t.Limit}
	return resp, nil
}

// watchdog cancels a request when its timer runs out; every byte that
// moves pushes the timer back.
type watchdog struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func newWatchdog(limit time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{timer: time.AfterFunc(limit, func() { cancel(ErrStalled) })}
	w.timer.Stop()
	return w
}

// arm restarts the timer with d, unless the watchdog was stopped.
func (w *watchdog) arm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.timer.Reset(d)
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// watchedBody is a request body: each read is the transport sending more.
type watchedBody struct {
	io.ReadCloser
	w     *watchdog
	limit time.Duration
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.arm(b.limit)
	}
	return n, err
}

// watchedResponse is an answer's body: each read that brings bytes pushes
// the watchdog back; the end or Close releases the request.
type watchedResponse struct {
	body   io.ReadCloser
	w      *watchdog
	cancel context.CancelCauseFunc
	ctx    context.Context
	m      *Meter
	now    func() time.Time
	limit  time.Duration
}

func (r *watchedResponse) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		r.w.arm(r.limit)
		if r.m != nil {
			r.m.Bytes += int64(n)
		}
	}
	if err != nil && r.m != nil && r.m.End.IsZero() {
		r.m.finish()
		if err == io.EOF {
			r.m.End = r.now()
		}
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(r.ctx), ErrStalled) {
		err = fmt.Errorf("%w for %s: %w", ErrStalled, r.limit, err)
	}
	return n, err
}

func (r *watchedResponse) Close() error {
	r.w.stop()
	err := r.body.Close()
	r.cancel(nil)
	return err
}

// Dial wraps a dial function so its connections count the bytes they
// read, for Meter.
func Dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c}, nil
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
