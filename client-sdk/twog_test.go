package clientsdk_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
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

// link puts a shaped link in front of the city's server.
func (ct *city) link(t *testing.T, l netshape.Link, seed int64) *netshape.Proxy {
	t.Helper()
	p, err := netshape.Listen(strings.TrimPrefix(ct.srv.URL, "http://"), l, seed)
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
	c := openPhone(t, t.TempDir(), clientsdk.Options{
		ServerURL: p.URL(), DeviceName: "2g phone", Platform: "test", Key: testKey(t), HTTPClient: hc,
		Retry: clientsdk.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 10},
	})
	signIn(t, c, username)
	return c
}

// busyTownship fills township A with n warnings, a third of them with an
// attempt recorded by its cadre: a month's work for its lead's first sync.
func busyTownship(t *testing.T, ct *city, n int) {
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
	ids := ct.importWarnings(t, rows...)
	cadre := ct.loggedIn(t, "a1")
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
	ct := newCity(t)
	busyTownship(t, ct, 1200)
	fast := netshape.Link{DownBitsPerSec: 1_000_000, UpBitsPerSec: 256_000, DownDelay: 50 * time.Millisecond, UpDelay: 50 * time.Millisecond}

	uncut := ct.link(t, fast, 1)
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
	cut := ct.link(t, cutLink, 2)
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

// uploadLog records, for each photo, the byte ranges the server stored
// from each upload request: what crossed the link, as the server's
// offsets before and after tell. A photo started again from byte 0 (a new
// upload, or a resumption from the wrong offset) shows as ranges that
// overlap.
type uploadLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	// photo is each upload's photo (its Upload-Metadata), by upload path.
	photo map[string]string
	// cutAt is the offset of an upload's last PATCH that failed, until a
	// HEAD says how much of it arrived.
	cutAt  map[string]int64
	ranges map[string][][2]int64
	first  time.Time
}

func (l *uploadLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, "/v1/uploads") {
		return l.base.RoundTrip(req)
	}
	l.mu.Lock()
	if l.first.IsZero() {
		l.first = time.Now()
		l.photo, l.cutAt, l.ranges = map[string]string{}, map[string]int64{}, map[string][][2]int64{}
	}
	l.mu.Unlock()
	resp, err := l.base.RoundTrip(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	path := req.URL.Path
	offset := func(h http.Header) int64 {
		n, _ := strconv.ParseInt(h.Get("Upload-Offset"), 10, 64)
		return n
	}
	switch {
	case req.Method == http.MethodPost && err == nil && resp.StatusCode == http.StatusCreated:
		if u, perr := req.URL.Parse(resp.Header.Get("Location")); perr == nil {
			l.photo[u.Path] = req.Header.Get("Upload-Metadata")
		}
	case req.Method == http.MethodPatch && err == nil && resp.StatusCode == http.StatusNoContent:
		l.stored(path, offset(req.Header), offset(resp.Header))
	case req.Method == http.MethodPatch && err != nil:
		l.cutAt[path] = offset(req.Header)
	case req.Method == http.MethodHead && err == nil && resp.StatusCode == http.StatusOK:
		if from, ok := l.cutAt[path]; ok {
			l.stored(path, from, offset(resp.Header))
			delete(l.cutAt, path)
		}
	}
	return resp, err
}

// stored records that the server stored bytes [from, to) of an upload.
// Callers hold l.mu.
func (l *uploadLog) stored(path string, from, to int64) {
	if to > from {
		photo := l.photo[path]
		l.ranges[photo] = append(l.ranges[photo], [2]int64{from, to})
	}
}

// maxCover is the most times the server was sent any byte of any photo.
func (l *uploadLog) maxCover() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	most := 0
	for _, rs := range l.ranges {
		for _, r := range rs {
			// A byte is covered by every range holding it; checking the
			// first byte of each range covers every boundary.
			n := 0
			for _, o := range rs {
				if r[0] >= o[0] && r[0] < o[1] {
					n++
				}
			}
			most = max(most, n)
		}
	}
	return most
}

func (l *uploadLog) firstUpload() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// A day's 30 attempts and 10 photos of 200 KiB arrive exactly once over a
// link cut every 40 KB: each photo resumes from the last byte the server
// stored, so no byte of it reaches the server more than twice.
func TestTwoG_AttemptsAndPhotosOverCutLink(t *testing.T) {
	ct := newCity(t)
	rows := make([]syncproto.FeedWarning, 30)
	for i := range rows {
		rows[i] = row("D"+strconv.Itoa(i), servertest.UnitVillA1)
	}
	ids := ct.importWarnings(t, rows...)
	// make test runs it faster than 64 kbit/s; make bench at 64 kbit/s.
	p := ct.link(t, netshape.Link{DownBitsPerSec: 2_000_000, UpBitsPerSec: 2_000_000, DownDelay: 20 * time.Millisecond,
		UpDelay: 20 * time.Millisecond, CutAfter: 40_000}, 3)
	log := &uploadLog{base: http.DefaultTransport.(*http.Transport).Clone()}
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
		w, err := ct.srv.Store.Warning(ids["D"+strconv.Itoa(i)])
		if err != nil {
			t.Fatal(err)
		}
		attempts += len(w.Attempts)
		for _, a := range w.Attempts {
			for _, sum := range a.Photos {
				if ct.srv.Photo(t, sum) != nil {
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
	// What crossed the link: each photo byte reached the server at most
	// twice, and the link carried little more than the photos.
	t.Logf("%d bytes up for the photos and the rest, %d cuts; a photo byte reached the server at most %d times",
		p.Stats().BytesUp, p.Stats().Cuts, log.maxCover())
	if n := log.maxCover(); n > 2 {
		t.Fatalf("a photo byte reached the server %d times, want at most 2", n)
	}
	if st, photoBytes := p.Stats(), int64(10*200<<10); float64(st.BytesUp) > 1.25*float64(photoBytes) {
		t.Fatalf("%d bytes went up for %d bytes of photos, more than 1.25 times", st.BytesUp, photoBytes)
	}
}

// Three hundred syncs, each refreshing its token, over a link that loses
// 5% of answers: nobody is signed out, and every op reaches the server
// exactly once.
func TestTwoG_LostAnswersSignNobodyOut(t *testing.T) {
	ct := newCityWith(t, nil, servertest.Options{AccessTTL: 20 * time.Second})
	rows := make([]syncproto.FeedWarning, 10)
	for i := range rows {
		rows[i] = row("R"+strconv.Itoa(i), servertest.UnitVillA1)
	}
	ids := ct.importWarnings(t, rows...)
	p := ct.link(t, netshape.Link{LoseAnswers: 0.05}, 4)
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
		w, err := ct.srv.Store.Warning(ids["R"+strconv.Itoa(i)])
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
	ct := newCity(t)
	ids := ct.importWarnings(t, row("P0", servertest.UnitVillA1))
	p := ct.link(t, netshape.Link{DownBitsPerSec: 64_000, UpBitsPerSec: 64_000, DownDelay: 400 * time.Millisecond, UpDelay: 400 * time.Millisecond}, 5)
	log := &uploadLog{base: http.DefaultTransport.(*http.Transport).Clone()}
	c := phoneOn(t, p, "a1", &http.Client{Transport: log})
	mustSync(t, c)
	for i := 0; i < 5; i++ {
		a := visit(syncproto.OutcomeDissuaded)
		a.Photos = []string{writePhoto(t, 1<<20, 100+i)}
		if _, err := c.RecordAttempt(ids["P0"], a); err != nil {
			t.Fatal(err)
		}
	}
	fresh := ct.importWarnings(t, row("NEW", servertest.UnitVillA1))["NEW"]
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
