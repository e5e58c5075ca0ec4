package clientsdk_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/netshape"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The tests of this file put a shaping proxy (internal/netshape) between
// the real SDK and the real server, as a 2G link: slow, cut after a number
// of bytes, losing answers. They assert counts (bytes, ops, sign-outs),
// never times. The figures at real 2G rates are in make bench.

// link puts a shaped link in front of the env's server.
func (e *env) link(t *testing.T, l netshape.Link, seed int64) *netshape.Proxy {
	t.Helper()
	p, err := netshape.Listen(strings.TrimPrefix(e.srv.URL, "http://"), l, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// phoneOn opens an SDK behind the proxy with the default (2G) HTTP client,
// unless hc is set, and signs username in.
func phoneOn(t *testing.T, p *netshape.Proxy, username string, hc *http.Client) *clientsdk.Client {
	t.Helper()
	c, err := clientsdk.Open(t.TempDir(), clientsdk.Options{
		ServerURL: p.URL(), DeviceName: "2g phone", Platform: "test", Key: testKey(t), HTTPClient: hc,
		Retry: clientsdk.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(context.Background(), username, servertest.CityPassword); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return c
}

// busyTownship fills township A with n warnings, a third of them with an
// attempt recorded by its cadre: a month's work for its lead's first sync.
func busyTownship(t *testing.T, e *env, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	rows := make([]syncproto.FeedWarning, n)
	for i := range rows {
		unit := servertest.UnitVillA1
		if i%2 == 1 {
			unit = servertest.UnitVillA2
		}
		rows[i] = realRow(rng, "T"+strconv.Itoa(i), unit)
	}
	ids := e.importWarnings(t, rows...)
	cadre := e.loggedIn(t, "a1")
	for i := 0; i < n; i += 6 {
		if _, err := cadre.RecordAttempt(ids["T"+strconv.Itoa(i)], visit(syncproto.OutcomeUnreachable)); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, cadre)
}

// realRow is a warning whose name, phone and address differ like real
// ones do, so a page compresses as a real one would.
func realRow(rng *rand.Rand, ext, unit string) syncproto.FeedWarning {
	r := row(ext, unit)
	han := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(rune(0x4e00 + rng.IntN(0x5000)))
		}
		return b.String()
	}
	r.Name = han(3)
	r.Phone = fmt.Sprintf("1%010d", rng.Int64N(1e10))
	r.IDTail = fmt.Sprintf("%04d", rng.IntN(10000))
	r.Address = han(4) + "村" + strconv.Itoa(rng.IntN(20)) + "组" + strconv.Itoa(rng.IntN(100)) + "号"
	r.FraudType = []string{"刷单返利", "虚假投资理财", "冒充客服", "冒充公检法", "虚假贷款"}[rng.IntN(5)]
	return r
}

// A township lead's first sync completes over a link cut every 40 KB, and
// the bytes it took stay within 1.5 times those of the same sync uncut:
// pages fit between the cuts, and a cut page is asked again smaller.
func TestTwoG_LeadFirstSyncOverCutLink(t *testing.T) {
	e := newEnv(t)
	busyTownship(t, e, 1200)
	fast := netshape.Link{DownBitsPerSec: 1_000_000, UpBitsPerSec: 256_000, DownDelay: 50 * time.Millisecond, UpDelay: 50 * time.Millisecond}

	uncut := e.link(t, fast, 1)
	lead := phoneOn(t, uncut, "leadA", nil)
	uncut.ResetStats()
	mustSync(t, lead)
	want := len(lead.Warnings(clientsdk.Filter{}))
	base := uncut.Stats()
	if want < 1200 {
		t.Fatalf("the uncut sync brought %d warnings, want 1200", want)
	}

	cutLink := fast
	cutLink.CutAfter = 40_000
	cut := e.link(t, cutLink, 2)
	lead2 := phoneOn(t, cut, "leadA", nil)
	cut.ResetStats()
	rep, err := lead2.Sync(context.Background())
	if err != nil {
		t.Fatalf("first sync over the cut link: %v (%+v)", err, rep)
	}
	got := cut.Stats()
	if n := len(lead2.Warnings(clientsdk.Filter{})); n != want {
		t.Fatalf("%d warnings on the phone after the cut sync, want %d", n, want)
	}
	if got.Cuts == 0 {
		t.Fatalf("the link was never cut (%+v): the test shows nothing", got)
	}
	t.Logf("uncut: %d bytes down; cut every 40 KB: %d bytes down, %d cuts", base.BytesDown, got.BytesDown, got.Cuts)
	if float64(got.BytesDown) > 1.5*float64(base.BytesDown) {
		t.Fatalf("the cut sync took %d bytes, more than 1.5 times the uncut %d", got.BytesDown, base.BytesDown)
	}
}

// patchLog records the byte ranges of every photo upload piece sent.
type patchLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	// sent counts, per upload and offset, the bytes of each piece.
	ranges map[string][][2]int64
	first  time.Time
}

func (l *patchLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/v1/uploads") {
		l.mu.Lock()
		if l.first.IsZero() {
			l.first = time.Now()
		}
		l.mu.Unlock()
		if req.Method == http.MethodPatch && req.Body != nil {
			off, _ := strconv.ParseInt(req.Header.Get("Upload-Offset"), 10, 64)
			req = req.Clone(req.Context())
			req.Body = &countedBody{ReadCloser: req.Body, done: func(n int64) { l.sent(req.URL.Path, off, n) }}
		}
	}
	return l.base.RoundTrip(req)
}

// sent records that n bytes from off of an upload left for the link.
func (l *patchLog) sent(path string, off, n int64) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ranges == nil {
		l.ranges = map[string][][2]int64{}
	}
	l.ranges[path] = append(l.ranges[path], [2]int64{off, off + n})
}

// countedBody counts the bytes the transport took of a request body: what
// it wrote towards the link, not what a dead connection refused.
type countedBody struct {
	io.ReadCloser
	n    int64
	once sync.Once
	done func(int64)
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.done(b.n) })
	return b.ReadCloser.Close()
}

// maxCover is the most times any byte of any upload was sent.
func (l *patchLog) maxCover() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	most := 0
	for _, rs := range l.ranges {
		for _, r := range rs {
			// A byte is covered by every range holding it; checking the
			// first byte of each range covers every boundary.
			for _, at := range []int64{r[0], r[1] - 1} {
				n := 0
				for _, o := range rs {
					if at >= o[0] && at < o[1] {
						n++
					}
				}
				most = max(most, n)
			}
		}
	}
	return most
}

func (l *patchLog) firstUpload() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// writePhoto writes a JPEG-looking file of size bytes, distinct per seed.
func writePhoto(t *testing.T, size, seed int) string {
	t.Helper()
	data := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{byte(seed), byte(seed >> 8), 7}, size/3+1)...)[:size]
	path := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.jpg", seed))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A day's 30 attempts and 10 photos of 200 KiB arrive exactly once over a
// link cut every 40 KB: each photo resumes from the last byte the server
// stored, so no byte of it is sent more than twice.
func TestTwoG_AttemptsAndPhotosOverCutLink(t *testing.T) {
	e := newEnv(t)
	rows := make([]syncproto.FeedWarning, 30)
	for i := range rows {
		rows[i] = row("D"+strconv.Itoa(i), servertest.UnitVillA1)
	}
	ids := e.importWarnings(t, rows...)
	// make test runs it faster than 64 kbit/s; make bench at 64 kbit/s.
	p := e.link(t, netshape.Link{DownBitsPerSec: 2_000_000, UpBitsPerSec: 2_000_000, DownDelay: 20 * time.Millisecond,
		UpDelay: 20 * time.Millisecond, CutAfter: 40_000}, 3)
	log := &patchLog{base: http.DefaultTransport.(*http.Transport).Clone()}
	c := phoneOn(t, p, "a1", &http.Client{Transport: log})
	mustSync(t, c)
	for i := 0; i < 30; i++ {
		a := visit(syncproto.OutcomeDissuaded)
		if i%3 == 0 {
			a.Photos = []string{writePhoto(t, 200<<10, i)}
		}
		if _, err := c.RecordAttempt(ids["D"+strconv.Itoa(i)], a); err != nil {
			t.Fatal(err)
		}
	}
	for try := 0; c.Status().Pending > 0 || c.Status().PhotosPending > 0; try++ {
		if try == 20 {
			t.Fatalf("after 20 syncs: %+v", c.Status())
		}
		if _, err := c.Sync(context.Background()); err != nil {
			t.Logf("sync %d: %v", try, err)
		}
	}
	attempts, photos := 0, 0
	for i := 0; i < 30; i++ {
		w, err := e.srv.Store.Warning(ids["D"+strconv.Itoa(i)])
		if err != nil {
			t.Fatal(err)
		}
		attempts += len(w.Attempts)
		for _, a := range w.Attempts {
			for _, sum := range a.Photos {
				if _, ok := e.srv.Store.BlobMeta(sum); ok {
					photos++
				}
			}
		}
	}
	if attempts != 30 || photos != 10 {
		t.Fatalf("the server holds %d attempts and %d photos, want 30 and 10", attempts, photos)
	}
	if st := p.Stats(); st.Cuts == 0 {
		t.Fatalf("the link was never cut: %+v", st)
	}
	if n := log.maxCover(); n > 2 {
		t.Fatalf("a photo byte was sent %d times, want at most 2", n)
	}
}

// Three hundred syncs, each refreshing its token, over a link that loses
// 5% of answers: nobody is signed out, and every op reaches the server
// exactly once.
func TestTwoG_LostAnswersSignNobodyOut(t *testing.T) {
	e := &env{srv: servertest.Start(t, servertest.Options{AccessTTL: 20 * time.Second})}
	e.ids = e.srv.LoadCity(t)
	rows := make([]syncproto.FeedWarning, 10)
	for i := range rows {
		rows[i] = row("R"+strconv.Itoa(i), servertest.UnitVillA1)
	}
	ids := e.importWarnings(t, rows...)
	p := e.link(t, netshape.Link{LoseAnswers: 0.05}, 4)
	c := phoneOn(t, p, "a1", nil)
	mustSync(t, c)
	signOuts := 0
	stop := c.OnChange(func(ev clientsdk.Event) {
		if _, ok := c.User(); ev.Kind == clientsdk.EventAuth && !ok {
			signOuts++
		}
	})
	defer stop()
	for i := 0; i < 300; i++ {
		if _, err := c.RecordAttempt(ids["R"+strconv.Itoa(i%10)], visit(syncproto.OutcomeUnreachable)); err != nil {
			t.Fatal(err)
		}
		// An access token lives 20 s and is refreshed 30 s before it
		// ends: every sync refreshes.
		_, _ = c.Sync(context.Background())
		if !c.Status().LoggedIn {
			t.Fatalf("signed out at sync %d", i)
		}
	}
	for try := 0; c.Status().Pending > 0; try++ {
		if try == 20 {
			t.Fatalf("ops still pending: %+v", c.Status())
		}
		_, _ = c.Sync(context.Background())
	}
	if signOuts != 0 {
		t.Fatalf("%d sign-outs", signOuts)
	}
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		w, err := e.srv.Store.Warning(ids["R"+strconv.Itoa(i)])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range w.Attempts {
			if seen[a.ID] {
				t.Fatalf("attempt %s twice", a.ID)
			}
			seen[a.ID] = true
		}
	}
	if len(seen) != 300 {
		t.Fatalf("%d attempts on the server, want 300", len(seen))
	}
	if st := p.Stats(); st.LostAnswers < 15 {
		t.Fatalf("only %d answers lost: the test shows little", st.LostAnswers)
	}
}

// A warning newly assigned to the cadre reaches the phone in the first
// sync while 5 MiB of photos wait: photos go after the pull.
func TestTwoG_NewWarningNotBehindPhotos(t *testing.T) {
	e := newEnv(t)
	ids := e.importWarnings(t, row("P0", servertest.UnitVillA1))
	p := e.link(t, netshape.Link{DownBitsPerSec: 64_000, UpBitsPerSec: 64_000, DownDelay: 400 * time.Millisecond, UpDelay: 400 * time.Millisecond}, 5)
	log := &patchLog{base: http.DefaultTransport.(*http.Transport).Clone()}
	c := phoneOn(t, p, "a1", &http.Client{Transport: log})
	mustSync(t, c)
	for i := 0; i < 5; i++ {
		a := visit(syncproto.OutcomeDissuaded)
		a.Photos = []string{writePhoto(t, 1<<20, 100+i)}
		if _, err := c.RecordAttempt(ids["P0"], a); err != nil {
			t.Fatal(err)
		}
	}
	fresh := e.importWarnings(t, row("NEW", servertest.UnitVillA1))["NEW"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var arrived time.Time
	var mu sync.Mutex
	stop := c.OnChange(func(ev clientsdk.Event) {
		if ev.Kind != clientsdk.EventWarnings {
			return
		}
		if _, ok := c.Warning(fresh); ok {
			mu.Lock()
			if arrived.IsZero() {
				arrived = time.Now()
			}
			mu.Unlock()
			// Photos would take ten minutes at 64 kbit/s: stop here.
			cancel()
		}
	})
	defer stop()
	_, _ = c.Sync(ctx)
	mu.Lock()
	defer mu.Unlock()
	if arrived.IsZero() {
		t.Fatal("the new warning did not reach the phone in the first sync")
	}
	if first := log.firstUpload(); !first.IsZero() && first.Before(arrived) {
		t.Fatalf("a photo upload began before the new warning arrived")
	}
	if st := c.Status(); st.PhotosPending != 5 || st.Pending != 0 {
		t.Fatalf("status after the sync: %+v", st)
	}
}
