package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// A city may be served from several addresses: the three nodes of its
// cluster (docs/CLUSTER.md), each of which answers every request, or one
// load balancer in front of them. A Client given several tries them in
// turn: a request that meets a connection failure at one address goes at
// once to the next, and the address that answered is where the following
// requests start. Every address is the same city (one store, one key set),
// so the token, the device's cursor and its client_seqs mean the same at
// each; resending a push elsewhere is safe because the server applies each
// client_seq of a device once.

// SplitAddresses reads a list of server addresses written as one string,
// separated by commas or white space, as a person types them into a
// setting or a flag: "https://a.example/4110, https://b.example/4110".
// Trailing slashes are dropped. It refuses an address that is not an
// absolute http or https URL.
func SplitAddresses(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		a := strings.TrimRight(f, "/")
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("server address %q is not an http or https URL (such as https://fieldsync.example/4110)", f)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no server address given")
	}
	return out, nil
}

// Address is the address requests go to first now: the one that answered
// last, or BaseURL before any failure.
func (c *Client) Address() string {
	return c.address(int(c.cur.Load()))
}

// Addresses are every address of the server, BaseURL first.
func (c *Client) Addresses() []string {
	return append([]string{c.BaseURL}, c.more...)
}

// UseAddress makes addr, one of Addresses, the one requests go to first,
// as when a device starts again at the address that answered last time.
// It reports false, changing nothing, for an address not in the list.
func (c *Client) UseAddress(addr string) bool {
	addr = strings.TrimRight(addr, "/")
	for i := range c.count() {
		if c.address(i) == addr {
			c.cur.Store(int64(i))
			return true
		}
	}
	return false
}

func (c *Client) count() int { return 1 + len(c.more) }

func (c *Client) address(i int) string {
	if i <= 0 || i > len(c.more) {
		return c.BaseURL
	}
	return c.more[i-1]
}

// each runs try on the addresses in turn from the current one, until one
// answers or a failure is not the address's (see addressFailed): each
// address once at most. The one that answers becomes the current one; one
// that fails passes the turn to the next, unless another request has moved
// it already. retry false stops after the first address that fails,
// passing the turn all the same: for a request that must not be sent again
// as it is (a PATCH whose offset the server may have moved).
func (c *Client) each(ctx context.Context, retry bool, try func(base string) error) error {
	n := c.count()
	start := int(c.cur.Load())
	var err error
	for k := range n {
		i := (start + k) % n
		if err = try(c.address(i)); err == nil {
			c.cur.Store(int64(i))
			return nil
		}
		if !addressFailed(ctx, err) {
			return err
		}
		c.cur.CompareAndSwap(int64(i), int64((i+1)%n))
		if !retry {
			return err
		}
	}
	return err
}

// transportError is a request that got no answer from the address: it
// could not connect, or the connection was reset, timed out or ended
// before the whole answer came.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// addressFailed reports whether err says the address, not the request,
// failed, so the next address may answer: no answer at all (transportError),
// or 502, 503 or 504, which a proxy sends when its node is down and a
// cluster node sends when it has no quorum or lags (with Retry-After). Not
// when the caller's context ended: that is the caller giving up, or the
// SDK dropping the requests of a network that went away.
func addressFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}
