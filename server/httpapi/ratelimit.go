package httpapi

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/throttle"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Default request limits. A refused request is answered 429 rate_limited
// with Retry-After; the SDK waits that long and resumes, so a limit set too
// low slows a sync down but loses nothing.
//
// Per device (every authenticated request, counted against the token's
// device): a phone back in signal after a day in the fields pushes its
// outbox (pushes of up to 500 ops), uploads the day's photos (one PUT each;
// a busy cadre takes a hundred), and pulls pages of changes; a township
// lead's first sync of 10,000 warnings is 20 pages, a center device's a few
// hundred. A burst of 600 takes all of that at once. The refill, 10 a
// second, is far more than a person's work needs even with a sync after
// every op (a sync with nothing new is two requests), and a console browser
// does not count here at all: its pages call the service directly. What
// the limit stops is one device (a stolen token, a client stuck in a loop)
// taking the server's writer for itself.
//
// Per client address (sign-in and token refresh, the endpoints a caller
// reaches without a token): the phones of many villages can share one
// carrier-grade NAT address. A phone refreshes its token every 15 minutes
// while it syncs and signs in seldom, so 2,000 phones behind one address
// average about 2 requests a second; the morning, when everyone opens the
// app, is the burst. 400 at once and 20 a second after keep that whole
// crowd under the limit while an address flooding the endpoints is held to
// 20 a second. Password guessing is stopped long before by the service's
// lockout per username and its limit on failed sign-ins per address.
const (
	DefaultDeviceRate  = 10
	DefaultDeviceBurst = 600
	DefaultIPRate      = 20
	DefaultIPBurst     = 400
)

// RateLimit tunes the request limits. The zero value takes the defaults
// above; a negative rate turns that limit off; Disabled turns both off (for
// benchmarks and the load program, which drive each device far harder than
// any phone).
type RateLimit struct {
	Disabled bool
	// DeviceRate is requests a second per device, refilling a bucket of
	// DeviceBurst.
	DeviceRate  float64
	DeviceBurst int
	// IPRate is sign-ins and token refreshes a second per client address,
	// refilling a bucket of IPBurst.
	IPRate  float64
	IPBurst int
	// TrustedProxies are the reverse proxies allowed to name the client in
	// X-Forwarded-For. A request from one of them counts against the
	// right-most address in that header that is not itself a trusted
	// proxy; any other request counts against its peer address, and its
	// X-Forwarded-For is ignored (anyone can write one).
	TrustedProxies []netip.Prefix
	// MaxKeys bounds the buckets of each limit (throttle.DefaultMaxKeys
	// when 0); buckets idle long enough to have refilled are forgotten.
	MaxKeys int
	// Now is the limits' clock; time.Now by default.
	Now func() time.Time
}

// limits are the server's request limits; a nil table allows everything.
type limits struct {
	device *throttle.Table
	ip     *throttle.Table
	now    func() time.Time
}

func newLimits(cfg RateLimit) *limits {
	l := &limits{now: cfg.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if cfg.Disabled {
		return l
	}
	l.device = newTable(cfg.DeviceRate, cfg.DeviceBurst, DefaultDeviceRate, DefaultDeviceBurst, cfg.MaxKeys)
	l.ip = newTable(cfg.IPRate, cfg.IPBurst, DefaultIPRate, DefaultIPBurst, cfg.MaxKeys)
	return l
}

func newTable(perSecond float64, burst int, defRate float64, defBurst, maxKeys int) *throttle.Table {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = defRate
	}
	if burst <= 0 {
		burst = defBurst
	}
	return throttle.New(perSecond, burst, maxKeys)
}

// rateLimited is the 429 answer. retry_after in the details carries the
// wait to handleError, which sends it as the Retry-After header.
func rateLimited(wait time.Duration, format string, args ...any) *syncproto.Error {
	return syncproto.Errorf(syncproto.CodeRateLimited, format, args...).With("retry_after", throttle.Seconds(wait))
}

// retryAfter is the Retry-After header of a 429 (rate_limited, or
// photo_quota_exceeded until the next day): the wait its details carry,
// else one second.
func retryAfter(e *syncproto.Error) string {
	d, _ := e.DetailSeconds("retry_after")
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10)
}

// limitDevice counts an authenticated request against its token's device.
// It runs after the token is verified and before the handler, so a refused
// request has changed nothing.
func (s *Server) limitDevice(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if wait := s.limits.device.Take(principal(c).Actor.DeviceID, s.limits.now()); wait > 0 {
			return rateLimited(wait, "this device is sending too many requests; retry in %d seconds", throttle.Seconds(wait))
		}
		return next(c)
	}
}

// limitIP counts a request against its client address: for the endpoints
// reached without a token.
func (s *Server) limitIP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if wait := s.limits.ip.Take(clientKey(clientIP(c)), s.limits.now()); wait > 0 {
			return rateLimited(wait, "too many sign-in requests from this address; retry in %d seconds", throttle.Seconds(wait))
		}
		return next(c)
	}
}

// clientAddress tells the service the client's address, so that sign-ins
// from the API and from the console are throttled per address alike.
func (s *Server) clientAddress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(app.WithClient(r.Context(), clientKey(clientIP(c)))))
		return next(c)
	}
}

// ipExtractor finds a request's client for echo's RealIP: its peer,
// unless the peer is a trusted proxy; then the right-most address of
// X-Forwarded-For that is not a trusted proxy (each proxy appends the
// address it received from, so everything left of the first untrusted hop
// could be forged). When every hop is trusted the left-most one is the
// client; a hop that is not an address makes the whole header untrusted,
// and the peer is the client. Only the configured proxies are trusted:
// echo's defaults would trust every loopback, link-local and private
// address as well.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientIP is the request's client address (RealIP, found by
// ipExtractor), IPv4 unmapped; invalid when it cannot be read.
func clientIP(c echo.Context) netip.Addr {
	a, _ := netip.ParseAddr(c.RealIP())
	return a.Unmap()
}

// clientKey is the bucket of an address: the address itself for IPv4, its
// /64 for IPv6, since one subscriber is given a whole /64 and can pick any
// address in it.
func clientKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes or bare
// addresses, as the --trusted-proxies setting gives them.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
