package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	extract := ipExtractor(trusted)
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"DirectIgnoresHeader", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"TrustedPeerNoHeader", "10.1.1.1:4000", nil, "10.1.1.1"},
		{"RightMostUntrusted", "10.1.1.1:4000", []string{"198.51.100.1, 203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"SeveralHeaders", "192.0.2.1:4000", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9"},
		{"AllTrusted", "10.1.1.1:4000", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		// A header a trusted proxy passed on but cannot have written
		// whole is not believed: the client is the peer.
		{"UnreadableHop", "10.1.1.1:4000", []string{"203.0.113.9, not-an-ip, 10.2.2.2"}, "10.1.1.1"},
		{"MappedIPv4", "[::ffff:10.1.1.1]:4000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"IPv6Peer", "[2001:db8:ffff::1]:4000", []string{"2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2:3:4:5:6"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: c.remote, Header: http.Header{}}
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := netip.ParseAddr(extract(r))
			if err != nil || got.Unmap() != netip.MustParseAddr(c.want) {
				t.Fatalf("client %s, want %s", got, c.want)
			}
		})
	}
}

// Loopback, link-local and private peers are not proxies unless
// configured: echo's extractor trusts them by default.
func TestClientIP_OnlyConfiguredProxies(t *testing.T) {
	for _, trusted := range [][]netip.Prefix{nil, {netip.MustParsePrefix("192.0.2.1/32")}} {
		extract := ipExtractor(trusted)
		for _, peer := range []string{"10.1.1.1:4000", "127.0.0.1:4000", "[fe80::1]:4000", "[fd00::1]:4000"} {
			r := &http.Request{RemoteAddr: peer, Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}}}
			if got := extract(r); got == "203.0.113.9" {
				t.Errorf("trusting %v: a request from %s is taken for the client its header names", trusted, peer)
			}
		}
	}
}

func TestClientKey(t *testing.T) {
	// One subscriber's /64 is one client; IPv4 addresses are their own.
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if clientKey(a) != clientKey(b) || clientKey(a) != "2001:db8:1:2::/64" {
		t.Fatalf("keys %s and %s", clientKey(a), clientKey(b))
	}
	if clientKey(netip.MustParseAddr("2001:db8:1:3::1")) == clientKey(a) {
		t.Fatal("another /64 shares the key")
	}
	if got := clientKey(netip.MustParseAddr("203.0.113.9")); got != "203.0.113.9" {
		t.Fatalf("IPv4 key %s", got)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,nonsense"); err == nil {
		t.Fatal("a bad trusted proxy was accepted")
	}
}
