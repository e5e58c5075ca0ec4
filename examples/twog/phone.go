package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/netshape"
	"github.com/fieldsync/fieldsync/syncproto"
)

// phone is one device: the real SDK with its default HTTP client, behind
// a proxy of its own that plays its radio link.
type phone struct {
	name  string
	user  syncproto.UserInput
	sdk   *clientsdk.Client
	proxy *netshape.Proxy
	// tr is the SDK's default transport, kept to drop its idle
	// connections before a measured phase; count wraps it.
	tr    *http.Transport
	count *counter
}

// openPhone opens an SDK for u in a folder of its own, behind a proxy
// that starts as a plain relay, and signs u in (not measured).
func (e *env) openPhone(ctx context.Context, name string, u syncproto.UserInput, seed int64) (*phone, error) {
	p, err := netshape.Listen(e.addr, netshape.Link{}, seed)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	// The SDK's default client (NewHTTPClient: kept-alive connections,
	// TLS sessions resumed, the stall watchdog's byte counter on each
	// connection), with the requests counted on their way to it.
	tr := clientsdk.NewHTTPClient(0).Transport.(*http.Transport)
	count := &counter{base: tr}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		p.Close()
		return nil, err
	}
	sdk, err := clientsdk.Open(filepath.Join(e.srv.TempDir, "phones", name), clientsdk.Options{
		ServerURL: p.URL(), DeviceName: "twog " + name, Platform: "twog", Key: key,
		HTTPClient: &http.Client{Transport: count},
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open SDK: %w", err)
	}
	ph := &phone{name: name, user: u, sdk: sdk, proxy: p, tr: tr, count: count}
	e.phones = append(e.phones, ph)
	if _, err := sdk.Login(ctx, u.Username, u.Password); err != nil {
		return nil, fmt.Errorf("login %s: %w", u.Username, err)
	}
	return ph, nil
}

// shape begins a measured phase on link: no connection is kept from
// before (a phone idle for the night has lost its connection, and its
// TCP handshake is part of what the link costs), and every count starts
// from zero.
func (p *phone) shape(l netshape.Link) error {
	p.tr.CloseIdleConnections()
	if err := p.proxy.SetLink(l); err != nil {
		return err
	}
	p.proxy.ResetStats()
	p.count.reset()
	return nil
}

func (p *phone) close() {
	p.sdk.Close()
	p.proxy.Close()
	p.tr.CloseIdleConnections()
}

// syncEvents hears the end of each sync of p's SDK, until stop.
func (p *phone) syncEvents() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	stop := p.sdk.OnChange(func(ev clientsdk.Event) {
		if ev.Kind == clientsdk.EventSync {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	return ch, stop
}

// counter counts the requests the SDK makes, by kind, and keeps the pull
// answers when asked. It sits under the SDK's stall watchdog and over
// its transport, so it sees each try of a request, failed or not, and an
// answer's body after gzip is undone.
type counter struct {
	base http.RoundTripper

	mu     sync.Mutex
	byKind map[string]int
	failed int
	// keep: pull answers are kept in pages.
	keep      bool
	pages     [][]byte
	pullBytes int64 // bytes of pull answers after gzip is undone
}

var _ http.RoundTripper = (*counter)(nil)

// RoundTrip implements http.RoundTripper.
func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := requestKind(req)
	c.mu.Lock()
	if c.byKind == nil {
		c.byKind = map[string]int{}
	}
	c.byKind[kind]++
	c.mu.Unlock()
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		c.mu.Lock()
		c.failed++
		c.mu.Unlock()
		return resp, err
	}
	if kind == "pull" {
		resp.Body = &pullBody{ReadCloser: resp.Body, c: c}
	}
	return resp, nil
}

// requestKind names a request as the report counts it.
func requestKind(req *http.Request) string {
	switch p := req.URL.Path; {
	case p == "/v1/sync/pull":
		return "pull"
	case p == "/v1/sync/push":
		return "push"
	case p == "/v1/auth/refresh":
		return "refresh"
	case p == "/v1/auth/login":
		return "login"
	case strings.HasPrefix(p, syncproto.UploadsPath):
		return "upload " + req.Method
	default:
		return req.Method + " " + p
	}
}

// pullBody counts, and when asked keeps, a pull answer as it is read.
type pullBody struct {
	io.ReadCloser
	c    *counter
	buf  []byte
	n    int64
	done bool
}

func (b *pullBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.c.mu.Lock()
	keep := b.c.keep
	b.c.pullBytes += int64(n)
	b.c.mu.Unlock()
	if keep {
		b.buf = append(b.buf, p[:n]...)
	}
	if err == io.EOF && !b.done && keep {
		b.done = true
		b.c.mu.Lock()
		b.c.pages = append(b.c.pages, b.buf)
		b.c.mu.Unlock()
	}
	return n, err
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKind, c.failed, c.pages, c.pullBytes = nil, 0, nil, 0
}

// snapshot is the counts so far.
func (c *counter) snapshot() requests {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := requests{byKind: maps.Clone(c.byKind), failed: c.failed, pullBytes: c.pullBytes}
	for _, n := range c.byKind {
		r.total += n
	}
	return r
}

// requests is what a counter counted.
type requests struct {
	total, failed int
	byKind        map[string]int
	pullBytes     int64
}

func (r requests) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.byKind)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.byKind[k]))
	}
	s := fmt.Sprintf("%d", r.total)
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if r.failed > 0 {
		s += fmt.Sprintf(", %d failed without an answer", r.failed)
	}
	return s
}

// link is a 2G link of downBits and upBits a second and a round trip of
// rtt, split evenly, made -speedup times faster.
func (e *env) link(downBits, upBits int, rtt time.Duration) netshape.Link {
	s := e.cfg.speedup
	half := time.Duration(float64(rtt) / 2 / s)
	return netshape.Link{DownBitsPerSec: int(float64(downBits) * s), UpBitsPerSec: int(float64(upBits) * s), DownDelay: half, UpDelay: half}
}
