package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestAddr: the address is free (it can be listened on) and, where the
// kernel leaves room below its ephemeral range, lies there.
func TestAddr(t *testing.T) {
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if top := ephemeralStart() - 1; top > lowest && (port < lowest || port > top) {
			t.Errorf("port %d is outside %d-%d, below the ephemeral range", port, lowest, top)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the address given is not free: %v", err)
		}
		ln.Close()
	}
}
