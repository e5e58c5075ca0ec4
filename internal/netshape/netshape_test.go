package netshape_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/netshape"
	"github.com/fieldsync/fieldsync/internal/testwait"
)

func TestProxy_Relay(t *testing.T) {
	t.Parallel()
	for name, link := range map[string]netshape.Link{
		"Unlimited": {},
		"Shaped": {
			DownBitsPerSec: 2_000_000, UpBitsPerSec: 1_000_000,
			DownDelay: 20 * time.Millisecond, UpDelay: 30 * time.Millisecond,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, echo)
			p := mustListen(t, srv.Addr(), link, 1)
			c := dial(t, p)
			data := randomBytes(100_000, 1)

			// Write all, half-close, and read the echo to EOF: the
			// half-close must cross the proxy both ways for ReadAll to
			// end.
			writeErr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.CloseWrite()
				}
				writeErr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("echo differs: %d bytes, want %d", len(got), len(data))
			}
			mustStats(t, p, netshape.Stats{BytesUp: 100_000, BytesDown: 100_000, Conns: 1})
			if n := srv.received.Load(); n != 100_000 {
				t.Fatalf("server received %d bytes, want 100000", n)
			}
		})
	}
}

func TestProxy_CutAfter(t *testing.T) {
	t.Parallel()
	t.Run("ServerSpeaks", func(t *testing.T) {
		t.Parallel()
		data := randomBytes(10_000, 2)
		srv := startServer(t, send(data))
		// 3000 is not a multiple of the chunk size: the cut falls inside
		// a chunk.
		p := mustListen(t, srv.Addr(), netshape.Link{CutAfter: 3000}, 1)
		got, err := io.ReadAll(dial(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[:3000]) {
			t.Fatalf("got %d bytes, want the first 3000", len(got))
		}
		mustStats(t, p, netshape.Stats{BytesDown: 3000, Conns: 1, Cuts: 1})
	})

	t.Run("BothWays", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		p := mustListen(t, srv.Addr(), netshape.Link{CutAfter: 5000}, 1)
		c := dial(t, p)
		data := randomBytes(20_000, 3)
		go c.Write(data) // fails once the link is cut
		got, _ := io.ReadAll(c)

		st := p.Stats()
		if st.BytesUp+st.BytesDown != 5000 || st.Cuts != 1 || st.Conns != 1 {
			t.Fatalf("stats are %+v, want 5000 bytes both ways together and one cut", st)
		}
		if int64(len(got)) != st.BytesDown || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("phone got %d bytes of the echo, proxy delivered %d", len(got), st.BytesDown)
		}
		testwait.Until(t, "the server reading what was relayed", func() bool {
			return srv.received.Load() == st.BytesUp
		})
	})

	t.Run("EachConnection", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, send(randomBytes(10_000, 4)))
		p := mustListen(t, srv.Addr(), netshape.Link{CutAfter: 1024}, 1)
		for range 3 {
			got, err := io.ReadAll(dial(t, p))
			if err != nil || len(got) != 1024 {
				t.Fatalf("got %d bytes, %v; want 1024 and EOF", len(got), err)
			}
		}
		mustStats(t, p, netshape.Stats{BytesDown: 3 * 1024, Conns: 3, Cuts: 3})
	})
}

// answers runs conns connections through p to an echo server, each doing
// up to perConn round trips until one fails, and returns how many
// succeeded on each.
func answers(t *testing.T, p *netshape.Proxy, conns, perConn int) []int {
	t.Helper()
	var ok []int
	for i := range conns {
		c := dial(t, p)
		n := 0
		for j := range perConn {
			if roundTrip(c, fmt.Appendf(nil, "request %d.%d", i, j)) != nil {
				break
			}
			n++
		}
		ok = append(ok, n)
		c.Close()
	}
	return ok
}

func TestProxy_LoseAnswers(t *testing.T) {
	t.Parallel()
	t.Run("None", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		p := mustListen(t, srv.Addr(), netshape.Link{LoseAnswers: 0}, 1)
		if got := answers(t, p, 1, 20); got[0] != 20 {
			t.Fatalf("%d of 20 answers arrived", got[0])
		}
		if st := p.Stats(); st.LostAnswers != 0 {
			t.Fatalf("stats are %+v, want no lost answer", st)
		}
	})

	t.Run("All", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		p := mustListen(t, srv.Addr(), netshape.Link{LoseAnswers: 1}, 1)
		c := dial(t, p)
		msg := []byte("record attempt")
		if err := roundTrip(c, msg); err == nil {
			t.Fatal("answer arrived, want it lost")
		}
		// The request reached the server, which answered: only the
		// answer was lost.
		mustStats(t, p, netshape.Stats{BytesUp: int64(len(msg)), Conns: 1, LostAnswers: 1})
		testwait.Until(t, "the server reading the request", func() bool {
			return srv.received.Load() == int64(len(msg))
		})
	})

	t.Run("Seeded", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		run := func(seed int64) ([]int, netshape.Stats) {
			p := mustListen(t, srv.Addr(), netshape.Link{LoseAnswers: 0.3}, seed)
			return answers(t, p, 20, 5), p.Stats()
		}
		first, st := run(7)
		lost := 0
		for _, n := range first {
			if n < 5 {
				lost++
			}
		}
		if lost == 0 || lost == 20 || st.LostAnswers != int64(lost) {
			t.Fatalf("answers per connection %v, stats %+v: want some lost, each counted", first, st)
		}
		if again, _ := run(7); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("seed 7 lost %v, then %v", first, again)
		}
		if other, _ := run(8); fmt.Sprint(other) == fmt.Sprint(first) {
			t.Fatalf("seeds 7 and 8 both lost %v", first)
		}
	})
}

func TestProxy_DropRate(t *testing.T) {
	t.Parallel()
	t.Run("All", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		p := mustListen(t, srv.Addr(), netshape.Link{DropRate: 1}, 1)
		if err := roundTrip(dial(t, p), []byte("hello")); err == nil {
			t.Fatal("round trip succeeded, want the connection reset")
		}
		mustStats(t, p, netshape.Stats{Conns: 1, Drops: 1})
	})

	t.Run("Seeded", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, echo)
		run := func(seed int64) ([]int, netshape.Stats) {
			p := mustListen(t, srv.Addr(), netshape.Link{DropRate: 0.1}, seed)
			return answers(t, p, 10, 10), p.Stats()
		}
		first, st := run(3)
		dropped := 0
		for _, n := range first {
			if n < 10 {
				dropped++
			}
		}
		if dropped == 0 || st.Drops != int64(dropped) {
			t.Fatalf("round trips per connection %v, stats %+v: want some dropped, each counted", first, st)
		}
		if again, _ := run(3); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("seed 3 gave %v, then %v", first, again)
		}
	})
}

// readAsync reads n bytes from c in the background.
func readAsync(c net.Conn, n int) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		buf := make([]byte, n)
		k, _ := io.ReadFull(c, buf)
		ch <- buf[:k]
	}()
	return ch
}

func TestProxy_BlackHole(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echo)
	p := mustListen(t, srv.Addr(), netshape.Link{DownDelay: 10 * time.Millisecond}, 1)
	open := dial(t, p)
	if err := roundTrip(open, []byte("before")); err != nil {
		t.Fatal(err)
	}

	mustSetLink(t, p, netshape.Link{BlackHole: true})
	if _, err := open.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	fresh := dial(t, p) // the kernel completes the handshake; nothing more
	if _, err := fresh.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	openEcho, freshEcho := readAsync(open, 6), readAsync(fresh, 5)

	// Nothing may cross while the link is gone; a slow machine can only
	// make this wait find less.
	select {
	case b := <-openEcho:
		t.Fatalf("open connection got %q through a black hole", b)
	case b := <-freshEcho:
		t.Fatalf("new connection got %q through a black hole", b)
	case <-time.After(300 * time.Millisecond):
	}
	if n, a := srv.received.Load(), srv.accepted.Load(); n != 6 || a != 1 {
		t.Fatalf("server received %d bytes on %d connections, want only the 6 before the black hole on 1", n, a)
	}

	// The link comes back: both stalled connections go on, and new ones
	// work.
	mustSetLink(t, p, netshape.Link{})
	if b := <-openEcho; string(b) != "during" {
		t.Fatalf("open connection got %q, want the stalled echo", b)
	}
	if b := <-freshEcho; string(b) != "fresh" {
		t.Fatalf("new connection got %q, want its echo", b)
	}
	if err := roundTrip(dial(t, p), []byte("after")); err != nil {
		t.Fatal(err)
	}
	mustStats(t, p, netshape.Stats{BytesUp: 22, BytesDown: 22, Conns: 3})
}

// A phone that moved to another network leaves its connections behind:
// stranded ones never move again, even when the link is back; new ones
// work.
func TestProxy_Strand(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echo)
	p := mustListen(t, srv.Addr(), netshape.Link{DownDelay: 10 * time.Millisecond}, 1)
	old := dial(t, p)
	if err := roundTrip(old, []byte("before")); err != nil {
		t.Fatal(err)
	}
	mustSetLink(t, p, netshape.Link{BlackHole: true})
	p.Strand()
	if _, err := old.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	oldEcho := readAsync(old, 6)
	mustSetLink(t, p, netshape.Link{DownDelay: 10 * time.Millisecond})
	if err := roundTrip(dial(t, p), []byte("after")); err != nil {
		t.Fatal(err)
	}
	// The new connection's echo came back; the stranded one's bytes never
	// left. A slow machine can only make this wait find less.
	select {
	case b := <-oldEcho:
		t.Fatalf("a stranded connection got %q", b)
	case <-time.After(300 * time.Millisecond):
	}
	mustStats(t, p, netshape.Stats{BytesUp: 11, BytesDown: 11, Conns: 2})
}

func TestProxy_Refuse(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echo)
	p := mustListen(t, srv.Addr(), netshape.Link{}, 1)
	open := dial(t, p)
	if err := roundTrip(open, []byte("hi")); err != nil {
		t.Fatal(err)
	}

	mustSetLink(t, p, netshape.Link{Refuse: true})
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("open connection still reads, want it reset")
	}
	// The reset may come before the dial has returned, or after.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		defer c.Close()
		if err := roundTrip(c, []byte("hi")); err == nil {
			t.Fatal("new connection relayed, want it refused")
		}
	}
	mustStats(t, p, netshape.Stats{BytesUp: 2, BytesDown: 2, Conns: 2, Refused: 2})
	if a := srv.accepted.Load(); a != 1 {
		t.Fatalf("server accepted %d connections, want only the one before Refuse", a)
	}

	mustSetLink(t, p, netshape.Link{})
	if err := roundTrip(dial(t, p), []byte("back")); err != nil {
		t.Fatal(err)
	}
}

// Lower bounds only: a busy machine makes transfers slower, never faster.
func TestProxy_Bandwidth(t *testing.T) {
	t.Parallel()
	t.Run("Down", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, send(randomBytes(16*1024, 5)))
		p := mustListen(t, srv.Addr(), netshape.Link{DownBitsPerSec: 64_000}, 1)
		start := time.Now()
		got, err := io.ReadAll(dial(t, p))
		if err != nil || len(got) != 16*1024 {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
		// 16 KiB is 131072 bits: 2.048 s at 64 kbit/s.
		if d := time.Since(start); d < 2048*time.Millisecond {
			t.Fatalf("16 KiB down at 64 kbit/s took %v, want at least 2.048 s", d)
		}
	})

	t.Run("Up", func(t *testing.T) {
		t.Parallel()
		done := make(chan struct{}, 1)
		srv := startServer(t, sink(done))
		p := mustListen(t, srv.Addr(), netshape.Link{UpBitsPerSec: 64_000}, 1)
		start := time.Now()
		c := dial(t, p)
		if _, err := c.Write(randomBytes(16*1024, 6)); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		<-done
		if d := time.Since(start); d < 2048*time.Millisecond {
			t.Fatalf("16 KiB up at 64 kbit/s took %v, want at least 2.048 s", d)
		}
		if n := srv.received.Load(); n != 16*1024 {
			t.Fatalf("server received %d bytes, want 16384", n)
		}
	})

	t.Run("Shared", func(t *testing.T) {
		t.Parallel()
		// Two connections of 8 KiB each would take 1.024 s alone; on one
		// radio the last byte comes after both have been sent.
		srv := startServer(t, send(randomBytes(8*1024, 7)))
		p := mustListen(t, srv.Addr(), netshape.Link{DownBitsPerSec: 64_000}, 1)
		start := time.Now()
		var wg sync.WaitGroup
		var total atomic.Int64
		for _, c := range []net.Conn{dial(t, p), dial(t, p)} {
			wg.Go(func() {
				b, _ := io.ReadAll(c)
				total.Add(int64(len(b)))
			})
		}
		wg.Wait()
		if total.Load() != 16*1024 {
			t.Fatalf("got %d bytes, want 16384", total.Load())
		}
		if d := time.Since(start); d < 2048*time.Millisecond {
			t.Fatalf("2 × 8 KiB down at 64 kbit/s took %v, want at least 2.048 s", d)
		}
	})
}

func TestProxy_Latency(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echo)
	p := mustListen(t, srv.Addr(), netshape.Link{UpDelay: 150 * time.Millisecond, DownDelay: 250 * time.Millisecond}, 1)
	c := dial(t, p)
	start := time.Now()
	if err := roundTrip(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("round trip took %v, want at least 400 ms", d)
	}
}

// countingListener counts the bytes its connections read and write, to
// compare with the proxy's counts.
type countingListener struct {
	net.Listener
	read, written *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.read, l.written}, nil
}

type countingConn struct {
	net.Conn
	read, written *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

func TestProxy_HTTP(t *testing.T) {
	t.Parallel()
	var read, written, handled atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		w.Write(bytes.Repeat(body, 100))
	}))
	srv.Listener = countingListener{srv.Listener, &read, &written}
	srv.Start()
	t.Cleanup(srv.Close)

	p := mustListen(t, srv.Listener.Addr().String(), netshape.Link{
		DownBitsPerSec: 256_000, UpBitsPerSec: 64_000,
		DownDelay: 20 * time.Millisecond, UpDelay: 20 * time.Millisecond,
	}, 1)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	post := func() (string, error) {
		resp, err := client.Post(p.URL(), "text/plain", strings.NewReader("village "))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	for range 5 {
		got, err := post()
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Repeat("village ", 100); got != want {
			t.Fatalf("body is %q, want %q", got, want)
		}
	}
	// One kept-alive connection; the proxy counted what the server read
	// and wrote (the server counts a write once it returns, which may be
	// after the client has the answer).
	if st := p.Stats(); st.Conns != 1 {
		t.Fatalf("stats are %+v, want 1 kept-alive connection", st)
	}
	testwait.Until(t, "the server's counts matching the proxy's", func() bool {
		st := p.Stats()
		return st.BytesUp == read.Load() && st.BytesDown == written.Load()
	})

	// A lost answer: the server handled the request, the client got an
	// error (a POST is not retried).
	mustSetLink(t, p, netshape.Link{LoseAnswers: 1})
	before := handled.Load()
	if _, err := post(); err == nil {
		t.Fatal("POST succeeded, want its answer lost")
	}
	if n := handled.Load() - before; n != 1 {
		t.Fatalf("server handled %d requests, want 1", n)
	}
	if st := p.Stats(); st.LostAnswers != 1 {
		t.Fatalf("stats are %+v, want one lost answer", st)
	}
}

func TestProxy_ResetStats(t *testing.T) {
	t.Parallel()
	srv := startServer(t, echo)
	p := mustListen(t, srv.Addr(), netshape.Link{}, 1)
	c := dial(t, p)
	if err := roundTrip(c, []byte("one")); err != nil {
		t.Fatal(err)
	}
	p.ResetStats()
	mustStats(t, p, netshape.Stats{})
	if err := roundTrip(c, []byte("two!")); err != nil {
		t.Fatal(err)
	}
	mustStats(t, p, netshape.Stats{BytesUp: 4, BytesDown: 4})
}

func TestLink_Validate(t *testing.T) {
	t.Parallel()
	for name, l := range map[string]netshape.Link{
		"NegativeRate":  {DownBitsPerSec: -1},
		"NegativeDelay": {UpDelay: -time.Millisecond},
		"NegativeCut":   {CutAfter: -1},
		"LoseAboveOne":  {LoseAnswers: 1.5},
		"DropNegative":  {DropRate: -0.1},
	} {
		t.Run(name, func(t *testing.T) {
			if err := l.Validate(); err == nil {
				t.Fatal("valid, want an error")
			}
			if _, err := netshape.Listen("127.0.0.1:1", l, 1); err == nil {
				t.Fatal("Listen accepted it")
			}
			p := mustListen(t, "127.0.0.1:1", netshape.Link{}, 1)
			if err := p.SetLink(l); err == nil {
				t.Fatal("SetLink accepted it")
			}
		})
	}
	for name, l := range map[string]netshape.Link{"GPRS": netshape.GPRS(), "Regular2G": netshape.Regular2G(), "Good2G": netshape.Good2G()} {
		if err := l.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// netshapeGoroutines counts the goroutines running the package's code.
func netshapeGoroutines() int {
	n, _ := netshapeStacks()
	return n
}

// netshapeStacks is the goroutines running the package's code, and their
// stacks.
func netshapeStacks() (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count, stacks := 0, ""
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "fieldsync/internal/netshape.") {
			count++
			stacks += g + "\n\n"
		}
	}
	return count, stacks
}

// Not parallel: it counts every goroutine of the package, and parallel
// tests wait until the sequential ones are done.
func TestProxy_Close(t *testing.T) {
	if n := netshapeGoroutines(); n != 0 {
		t.Fatalf("%d goroutines of netshape before the test", n)
	}
	srv := startServer(t, echo)
	p, err := netshape.Listen(srv.Addr(), netshape.Link{DownBitsPerSec: 8_000, DownDelay: time.Second}, 1)
	if err != nil {
		t.Fatal(err)
	}

	// A connection mid-transfer on a slow link, an idle one, one stalled
	// in a black hole and one accepted in it, never dialed.
	busy, idle := dial(t, p), dial(t, p)
	if _, err := busy.Write(randomBytes(64*1024, 8)); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the busy connection's data reaching the server", func() bool {
		return srv.received.Load() > 0
	})
	mustSetLink(t, p, netshape.Link{BlackHole: true})
	stalled, unborn := dial(t, p), dial(t, p)
	stalled.Write([]byte("stalled"))
	testwait.Until(t, "four connections accepted", func() bool { return p.Stats().Conns == 4 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for every goroutine to be done; one may still be
	// returning from its last deferred call.
	for deadline := testwait.Deadline(t); ; time.Sleep(5 * time.Millisecond) {
		n, stacks := netshapeStacks()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of netshape left after Close:\n%s", n, stacks)
		}
	}
	for name, c := range map[string]net.Conn{"busy": busy, "idle": idle, "stalled": stalled, "unborn": unborn} {
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s connection: %v, want it closed", name, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
