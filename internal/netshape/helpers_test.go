package netshape_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/netshape"
)

// server is a TCP server on 127.0.0.1 behind the proxy, counting what
// reached it.
type server struct {
	ln       net.Listener
	accepted atomic.Int64 // connections accepted
	received atomic.Int64 // bytes read

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// startServer serves each connection with handle until the test ends.
func startServer(tb testing.TB, handle func(s *server, c net.Conn)) *server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(s, c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// Addr is the server's host:port, the proxy's target.
func (s *server) Addr() string { return s.ln.Addr().String() }

// read reads from c, counting the bytes received.
func (s *server) read(c net.Conn, buf []byte) (int, error) {
	n, err := c.Read(buf)
	s.received.Add(int64(n))
	return n, err
}

// echo writes back what it reads and half-closes when the client does.
func echo(s *server, c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := s.read(c, buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			c.(*net.TCPConn).CloseWrite()
		}
		if err != nil {
			return
		}
	}
}

// send writes data as soon as a client connects, then closes: a server
// that speaks first.
func send(data []byte) func(*server, net.Conn) {
	return func(s *server, c net.Conn) {
		c.Write(data)
	}
}

// sink reads until EOF and then sends on done.
func sink(done chan<- struct{}) func(*server, net.Conn) {
	return func(s *server, c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := s.read(c, buf); err != nil {
				break
			}
		}
		done <- struct{}{}
	}
}

// mustListen starts a proxy to target, closed when the test ends.
func mustListen(tb testing.TB, target string, l netshape.Link, seed int64) *netshape.Proxy {
	tb.Helper()
	p, err := netshape.Listen(target, l, seed)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// mustSetLink sets l on p.
func mustSetLink(tb testing.TB, p *netshape.Proxy, l netshape.Link) {
	tb.Helper()
	if err := p.SetLink(l); err != nil {
		tb.Fatal(err)
	}
}

// dial connects to the proxy; the connection is closed when the test ends.
func dial(tb testing.TB, p *netshape.Proxy) *net.TCPConn {
	tb.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip sends msg to an echo server and reads it back.
func roundTrip(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo is %q, want %q", got, msg)
	}
	return nil
}

// randomBytes is n bytes that are the same in every run.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mustStats fails tb unless p's stats are want.
func mustStats(tb testing.TB, p *netshape.Proxy, want netshape.Stats) {
	tb.Helper()
	if got := p.Stats(); got != want {
		tb.Fatalf("stats are\n%+v, want\n%+v", got, want)
	}
}
