// Package freeport chooses loopback addresses for servers started as child
// processes (fieldsyncd nodes, nginx), whose ports must be named before
// they run and, for a node restarted after a kill, stay theirs.
//
// A port from a listener on port 0, closed at once, is in the kernel's
// ephemeral range: until the child binds it, the kernel may hand it to any
// other listener on port 0 or to an outgoing connection (the tests open
// hundreds), and the child fails with "address already in use". Ports
// below that range are never handed out so; one is chosen at random and
// checked free.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port chosen from: above the well-known and most
// registered services' ports.
const lowest = 10_000

// Addr returns a 127.0.0.1 address with a port nothing listens on now,
// below the ephemeral range when there is room, else from it.
func Addr() (string, error) {
	if top := ephemeralStart() - 1; top > lowest {
		for range 200 {
			port := lowest + rand.IntN(top-lowest+1)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default when it cannot be read).
func ephemeralStart() int {
	start := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				start = n
			}
		}
	}
	return start
}
