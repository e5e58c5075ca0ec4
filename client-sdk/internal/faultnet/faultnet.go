// Package faultnet is a fault-injecting http.RoundTripper for tests of the
// SDK's sync engine. Each request through a Transport may, at random from a
// seeded source and at the rates the test sets, be
//
//   - dropped before it is sent (the server never sees it),
//   - sent and its answer dropped after the server committed it,
//   - delayed,
//   - sent twice, the second answer returned (a proxy's replay),
//   - answered 503 unavailable without being sent,
//   - answered 429 rate_limited with Retry-After 0 or 1 without being sent.
//
// A Transport can also be switched offline (every request fails at once),
// pointed at another server (Retarget), and given a Hook that sees every
// request first and may answer it itself, send it and then fail, or panic:
// the focused tests use hooks to fabricate one exact protocol answer, and
// the crash tests to stop a sync at one exact step.
//
// Fabricated error answers carry the protocol's JSON error envelope
// (PROTOCOL.md section 2), as the real server would send them.
package faultnet

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Kind names what the transport did with one request.
type Kind string

// Kinds of faults, and the outcomes that are not faults.
const (
	// Sent: the request went through untouched.
	Sent Kind = "sent"
	// DropRequest: an error returned without sending.
	DropRequest Kind = "drop_request"
	// DropResponse: sent, the server's answer read and thrown away, an
	// error returned.
	DropResponse Kind = "drop_response"
	// Delay: sent after a pause.
	Delay Kind = "delay"
	// Duplicate: sent twice; the second answer is returned.
	Duplicate Kind = "duplicate"
	// Unavailable: answered 503 without sending.
	Unavailable Kind = "unavailable"
	// RateLimited: answered 429 with Retry-After 0 or 1 without sending.
	RateLimited Kind = "rate_limited"
	// Offline: failed at once because the device is offline.
	Offline Kind = "offline"
	// Hooked: the hook answered or failed the request.
	Hooked Kind = "hooked"
)

// Kinds lists the random fault kinds.
var Kinds = []Kind{DropRequest, DropResponse, Delay, Duplicate, Unavailable, RateLimited}

// ErrInjected is wrapped by every error the transport makes up.
var ErrInjected = errors.New("faultnet: injected network failure")

// Rates are the probabilities, each in [0, 1], that a request gets each
// fault. At most one fault hits a request; their sum should stay below 1.
type Rates struct {
	DropRequest  float64
	DropResponse float64
	Delay        float64
	Duplicate    float64
	Unavailable  float64
	RateLimited  float64
}

// Uniform returns Rates with every fault at p.
func Uniform(p float64) Rates {
	return Rates{DropRequest: p, DropResponse: p, Delay: p, Duplicate: p, Unavailable: p, RateLimited: p}
}

// Outcome is what happened to one request.
type Outcome struct {
	// N counts requests through the transport, from 1.
	N      int
	Method string
	Path   string
	Kind   Kind
	// Status is the HTTP status the caller got, 0 when it got an error.
	Status int
	// Code is the protocol error code of an error answer, if any.
	Code string
	// RetryAfter is the Retry-After header the caller got, in seconds,
	// or -1 when there was none.
	RetryAfter int
}

// Request is a request as a Hook sees it: its body is read already.
type Request struct {
	// N counts requests through the transport, from 1.
	N    int
	HTTP *http.Request
	// Body is the body as sent (gzip when Content-Encoding says so).
	Body []byte
}

// Path is the request's URL path, e.g. "/v1/sync/push".
func (r *Request) Path() string { return r.HTTP.URL.Path }

// Plain returns the body decompressed.
func (r *Request) Plain() ([]byte, error) {
	if !strings.EqualFold(r.HTTP.Header.Get("Content-Encoding"), "gzip") {
		return r.Body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("gunzip request: %w", err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// Decode decodes the body into v with the codec its Content-Type names.
func (r *Request) Decode(v any) error {
	plain, err := r.Plain()
	if err != nil {
		return err
	}
	codec := syncproto.CodecFor(r.HTTP.Header.Get("Content-Type"))
	if codec == nil {
		return fmt.Errorf("no codec for %q", r.HTTP.Header.Get("Content-Type"))
	}
	return codec.Unmarshal(plain, v)
}

// Next sends a request on through the random faults to the server.
type Next func() (*http.Response, error)

// Hook sees every request before the random faults. It may return
// next() (and look at or change the answer), answer by itself, return an
// error, or panic. A Hook runs on the caller's goroutine.
type Hook func(r *Request, next Next) (*http.Response, error)

// Transport is the fault-injecting http.RoundTripper. It is safe for
// concurrent use.
type Transport struct {
	base http.RoundTripper

	mu       sync.Mutex
	rng      *rand.Rand
	rates    Rates
	maxDelay time.Duration
	offline  bool
	hook     Hook
	target   *url.URL
	n        int
	counts   map[Kind]int
	codes    map[string]int
	last     Outcome
	history  []Outcome
	keep     int
}

var _ http.RoundTripper = (*Transport)(nil)

// shared is the base transport of every Transport made with a nil base: a
// larger idle pool than http.DefaultTransport's, since tests run many
// devices against one server.
var shared = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}()

// New returns a transport with no faults yet, seeded with seed, sending
// through base (a shared pooled transport when nil).
func New(seed uint64, base http.RoundTripper) *Transport {
	if base == nil {
		base = shared
	}
	return &Transport{
		base:     base,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		maxDelay: 5 * time.Millisecond,
		counts:   map[Kind]int{},
		codes:    map[string]int{},
		keep:     1 << 16,
	}
}

// SetRates sets the random fault rates; the zero Rates turns faults off.
func (t *Transport) SetRates(r Rates) {
	t.mu.Lock()
	t.rates = r
	t.mu.Unlock()
}

// SetMaxDelay sets the longest Delay fault (5 ms by default).
func (t *Transport) SetMaxDelay(d time.Duration) {
	t.mu.Lock()
	t.maxDelay = d
	t.mu.Unlock()
}

// SetOffline switches the device's network off (every request fails at
// once, nothing is sent) or on.
func (t *Transport) SetOffline(off bool) {
	t.mu.Lock()
	t.offline = off
	t.mu.Unlock()
}

// Offline reports whether the network is switched off.
func (t *Transport) Offline() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.offline
}

// SetHook installs h (nil removes it).
func (t *Transport) SetHook(h Hook) {
	t.mu.Lock()
	t.hook = h
	t.mu.Unlock()
}

// Retarget sends every later request to base (scheme and host of a server
// URL) instead of the host the caller named: a server that moved.
func (t *Transport) Retarget(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.target = u
	t.mu.Unlock()
	return nil
}

// Count is how many requests ended with kind k.
func (t *Transport) Count(k Kind) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[k]
}

// Counts returns a copy of the count of each kind.
func (t *Transport) Counts() map[Kind]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// Codes returns how many error answers of each protocol code the caller
// got (fabricated or the server's).
func (t *Transport) Codes() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.codes)
}

// Requests is how many requests went through the transport.
func (t *Transport) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Last is the outcome of the latest request that finished.
func (t *Transport) Last() Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// History returns the outcomes of the latest requests (up to 65536),
// oldest first.
func (t *Transport) History() []Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Outcome(nil), t.history...)
}

// ResetHistory forgets the outcomes recorded so far.
func (t *Transport) ResetHistory() {
	t.mu.Lock()
	t.history = nil
	t.mu.Unlock()
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("faultnet: read request body: %w", err)
		}
	}
	t.mu.Lock()
	t.n++
	n := t.n
	offline, hook, target := t.offline, t.hook, t.target
	t.mu.Unlock()

	out := Outcome{N: n, Method: req.Method, Path: req.URL.Path, RetryAfter: -1}
	if offline {
		out.Kind = Offline
		t.finish(out, nil)
		return nil, fmt.Errorf("%w: network unreachable (device offline)", ErrInjected)
	}
	r := &Request{N: n, HTTP: req, Body: body}
	kind := Sent
	next := func() (*http.Response, error) {
		resp, k, err := t.faulty(req, body, target)
		kind = k
		return resp, err
	}
	var resp *http.Response
	var err error
	if hook != nil {
		called := false
		resp, err = hook(r, func() (*http.Response, error) {
			called = true
			return next()
		})
		if !called {
			kind = Hooked
		}
	} else {
		resp, err = next()
	}
	out.Kind = kind
	t.finish(out, resp)
	return resp, err
}

func (t *Transport) finish(out Outcome, resp *http.Response) {
	if resp != nil {
		out.Status = resp.StatusCode
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if secs, err := strconv.Atoi(ra); err == nil {
				out.RetryAfter = secs
			}
		}
		if resp.StatusCode >= 400 {
			out.Code = peekCode(resp)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[out.Kind]++
	if out.Code != "" {
		t.codes[out.Code]++
	}
	t.last = out
	t.history = append(t.history, out)
	if len(t.history) > t.keep {
		t.history = t.history[len(t.history)-t.keep:]
	}
}

// peekCode reads the protocol error code of an error answer and puts the
// body back for the caller.
func peekCode(resp *http.Response) string {
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				data = plain
			}
		}
	}
	codec := syncproto.CodecFor(resp.Header.Get("Content-Type"))
	if codec == nil {
		return ""
	}
	var env syncproto.ErrorEnvelope
	if codec.Unmarshal(data, &env) != nil || env.Error == nil {
		return ""
	}
	return env.Error.Code
}

// pick draws the fault for one request.
func (t *Transport) pick() (Kind, time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rng.Float64()
	delay := time.Duration(0)
	if t.maxDelay > 0 {
		delay = time.Duration(t.rng.Int64N(int64(t.maxDelay)) + 1)
	}
	retryAfter := t.rng.IntN(2)
	for _, f := range []struct {
		k Kind
		p float64
	}{
		{DropRequest, t.rates.DropRequest},
		{DropResponse, t.rates.DropResponse},
		{Delay, t.rates.Delay},
		{Duplicate, t.rates.Duplicate},
		{Unavailable, t.rates.Unavailable},
		{RateLimited, t.rates.RateLimited},
	} {
		if r < f.p {
			return f.k, delay, retryAfter
		}
		r -= f.p
	}
	return Sent, 0, 0
}

// faulty sends one request through a random fault.
func (t *Transport) faulty(req *http.Request, body []byte, target *url.URL) (*http.Response, Kind, error) {
	kind, delay, retryAfter := t.pick()
	switch kind {
	case DropRequest:
		return nil, kind, fmt.Errorf("%w: connection refused before sending", ErrInjected)
	case Unavailable:
		return ErrorResponse(req, http.StatusServiceUnavailable, syncproto.CodeUnavailable,
			"the server is overloaded; retry shortly (faultnet)", nil, nil), kind, nil
	case RateLimited:
		h := http.Header{"Retry-After": {strconv.Itoa(retryAfter)}}
		return ErrorResponse(req, http.StatusTooManyRequests, syncproto.CodeRateLimited,
			"too many requests; retry after the time Retry-After gives (faultnet)", nil, h), kind, nil
	case Delay:
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, kind, req.Context().Err()
		}
	case DropResponse:
		resp, err := t.send(req, body, target)
		if err != nil {
			return nil, kind, err
		}
		drain(resp)
		return nil, kind, fmt.Errorf("%w: connection reset after the server answered %d", ErrInjected, resp.StatusCode)
	case Duplicate:
		resp, err := t.send(req, body, target)
		if err != nil {
			return nil, kind, err
		}
		drain(resp)
	}
	resp, err := t.send(req, body, target)
	return resp, kind, err
}

// send passes one copy of req to the base transport.
func (t *Transport) send(req *http.Request, body []byte, target *url.URL) (*http.Response, error) {
	r := req.Clone(req.Context())
	if target != nil {
		u := *r.URL
		u.Scheme, u.Host = target.Scheme, target.Host
		r.URL, r.Host = &u, ""
	}
	if req.Body != nil || body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return t.base.RoundTrip(r)
}

// drain reads an answer to the end and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// Send passes req straight to the server, past the random faults: for a
// Hook that must reach the server whatever the rates are. The body must be
// the Request's Body.
func (t *Transport) Send(r *Request) (*http.Response, error) {
	t.mu.Lock()
	target := t.target
	t.mu.Unlock()
	return t.send(r.HTTP, r.Body, target)
}

// ErrorResponse makes an error answer with the protocol's JSON envelope
// {"error": {code, message, details}}, and header's entries.
func ErrorResponse(req *http.Request, status int, code, message string, details map[string]any, header http.Header) *http.Response {
	data, _ := json.Marshal(syncproto.ErrorEnvelope{Error: &syncproto.Error{Code: code, Message: message, Details: details}})
	h := http.Header{}
	for k, v := range header {
		h[k] = v
	}
	h.Set("Content-Type", syncproto.JSON.MediaType())
	h.Set(syncproto.HeaderProtocol, syncproto.ProtocolVersion)
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(data)),
		ContentLength: int64(len(data)),
		Request:       req,
	}
}

// ReadAnswer reads an answer's body (decompressed) and puts it back, so a
// Hook can look at what the server said before the caller does.
func ReadAnswer(resp *http.Response) ([]byte, error) {
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	return data, nil
}

// DecodeAnswer decodes a successful answer's body into v, leaving it in
// place for the caller.
func DecodeAnswer(resp *http.Response, v any) error {
	data, err := ReadAnswer(resp)
	if err != nil {
		return err
	}
	codec := syncproto.CodecFor(resp.Header.Get("Content-Type"))
	if codec == nil {
		return fmt.Errorf("no codec for %q", resp.Header.Get("Content-Type"))
	}
	return codec.Unmarshal(data, v)
}
