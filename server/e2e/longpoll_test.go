package e2e_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// heldTimers end held pulls' waits only when a test says (fire), so a
// test of what else ends a wait never races the clock.
type heldTimers struct {
	mu    sync.Mutex
	fired []chan time.Time
}

func (h *heldTimers) start(time.Duration) (<-chan time.Time, func() bool) {
	ch := make(chan time.Time, 1)
	h.mu.Lock()
	h.fired = append(h.fired, ch)
	h.mu.Unlock()
	return ch, func() bool { return true }
}

// fire ends every wait started so far.
func (h *heldTimers) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.fired {
		select {
		case ch <- time.Now():
		default:
		}
	}
}

// pollCity is the small city served with held pulls' timers given by the
// test (nil: real ones), each user's device at the head of its scope.
type pollCity struct {
	srv     *servertest.Server
	dev     map[string]*servertest.Device
	cursors map[string]string
}

func newPollCity(t *testing.T, opts servertest.Options) *pollCity {
	t.Helper()
	srv := servertest.Start(t, opts)
	srv.LoadCity(t)
	c := &pollCity{srv: srv, dev: map[string]*servertest.Device{}, cursors: map[string]string{}}
	for _, u := range servertest.CityUsers {
		d := srv.Login(t, u.Username, testPassword)
		c.dev[u.Username] = d
		_, last := pullAll(t, d, "", syncproto.MaxPullLimit)
		c.cursors[u.Username] = last.Cursor
	}
	return c
}

// polled is the outcome of one pull.
type polled struct {
	resp *syncproto.PullResponse
	err  error
}

// poll starts a pull of username's device from its head with wait seconds
// and returns where its outcome will come.
func (c *pollCity) poll(ctx context.Context, username string, wait int) <-chan polled {
	d := c.dev[username]
	out := make(chan polled, 1)
	go func() {
		resp, err := d.Pull(ctx, syncproto.PullRequest{DeviceID: d.ID, Cursor: c.cursors[username], Wait: wait})
		out <- polled{resp, err}
	}()
	return out
}

// held waits until n pulls are held.
func (c *pollCity) held(t *testing.T, n int) {
	t.Helper()
	testwait.Until(t, "held pulls", func() bool { return c.srv.Store.PullsWaiting() == n })
}

// feed imports one warning into unit through the center and returns its id.
func (c *pollCity) feed(t *testing.T, ext, unit string) string {
	t.Helper()
	resp, err := c.dev["center1"].ImportFeed(context.Background(), []syncproto.FeedWarning{servertest.FeedRow(ext, unit, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	return resp.Created[0].ID
}

// outcome waits for a pull's outcome for as long as the test may run.
func outcome(t *testing.T, ch <-chan polled, what string) polled {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(time.Until(testwait.Deadline(t))):
		t.Fatalf("gave up waiting for %s", what)
		return polled{}
	}
}

// TestLongPoll_WakesOnChangeInScope: a pull with nothing due and a wait is
// held, counted in the metrics, and answered with the change as soon as
// one is committed in its scope; its timer never fires here, so nothing
// else could answer it.
func TestLongPoll_WakesOnChangeInScope(t *testing.T) {
	timers := &heldTimers{}
	m := metrics.New(metrics.Options{})
	c := newPollCity(t, servertest.Options{PullTimer: timers.start, Metrics: m})
	result := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	if got, _ := scrape(t, c.srv); got.value("fieldsync_pulls_waiting", nil) != 1 {
		t.Fatalf("fieldsync_pulls_waiting = %v with one pull held", got.value("fieldsync_pulls_waiting", nil))
	}
	// A village A1 warning is assigned to a1 at once: a1's scope changes.
	id := c.feed(t, "LP1", unitVillA1)
	p := outcome(t, result, "the held pull's answer")
	if p.err != nil {
		t.Fatal(p.err)
	}
	if len(p.resp.Changes) != 1 || p.resp.Changes[0].ID != id || p.resp.Changes[0].Kind != syncproto.ChangePut || p.resp.Reset {
		t.Fatalf("the held pull answered %+v, want the put of %s", p.resp, id)
	}
	c.held(t, 0)
}

// TestLongPoll_OtherScopeStaysEmpty: a change in another cadre's scope does
// not answer a held pull with anything: it ends with its wait, empty.
func TestLongPoll_OtherScopeStaysEmpty(t *testing.T) {
	c := newPollCity(t, servertest.Options{})
	result := c.poll(context.Background(), "a1", 1)
	c.held(t, 1)
	c.feed(t, "LP2", unitVillB1)
	p := outcome(t, result, "the held pull's answer")
	if p.err != nil {
		t.Fatal(p.err)
	}
	if len(p.resp.Changes) != 0 || p.resp.Reset || p.resp.More {
		t.Fatalf("a1's held pull answered %+v after a change in b1's scope", p.resp)
	}
	// The change is b1's.
	b1, _ := pullAll(t, c.dev["b1"], c.cursors["b1"], 0)
	if len(warningIDs(b1)) != 1 {
		t.Fatalf("b1 pulled %v", b1)
	}
}

// TestLongPoll_ReleasedOnShutdown: closing the server answers a held pull
// at once with its empty page, rather than keeping the server up to the
// end of the wait (its timer never fires here).
func TestLongPoll_ReleasedOnShutdown(t *testing.T) {
	timers := &heldTimers{}
	c := newPollCity(t, servertest.Options{PullTimer: timers.start})
	result := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	closed := make(chan error, 1)
	go func() { closed <- c.srv.Close() }()
	p := outcome(t, result, "the held pull's answer at shutdown")
	if p.err != nil || len(p.resp.Changes) != 0 || p.resp.Reset {
		t.Fatalf("at shutdown the held pull answered %+v, %v; want the empty page", p.resp, p.err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(time.Until(testwait.Deadline(t))):
		t.Fatal("gave up waiting for the server to close")
	}
}

// TestLongPoll_DrainAnswersAtOnce: once the server drains, held pulls are
// answered and new ones do not wait.
func TestLongPoll_DrainAnswersAtOnce(t *testing.T) {
	timers := &heldTimers{}
	c := newPollCity(t, servertest.Options{PullTimer: timers.start})
	result := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	c.srv.HTTP.Drain()
	if p := outcome(t, result, "the held pull's answer on drain"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("on drain the held pull answered %+v, %v", p.resp, p.err)
	}
	if p := outcome(t, c.poll(context.Background(), "b1", syncproto.MaxPullWait), "a pull while draining"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("a pull while draining answered %+v, %v", p.resp, p.err)
	}
	c.held(t, 0)
}

// TestLongPoll_ClientGone: a client that goes away lets go of its held
// pull at once.
func TestLongPoll_ClientGone(t *testing.T) {
	timers := &heldTimers{}
	c := newPollCity(t, servertest.Options{PullTimer: timers.start})
	ctx, cancel := context.WithCancel(context.Background())
	result := c.poll(ctx, "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	cancel()
	if p := outcome(t, result, "the cancelled pull"); p.err == nil {
		t.Fatalf("a cancelled pull answered %+v", p.resp)
	}
	c.held(t, 0)
}

// TestLongPoll_OnePerDevice: a device that polls again (its connection
// dropped unnoticed) gets its old held pull answered: only the new one
// waits.
func TestLongPoll_OnePerDevice(t *testing.T) {
	timers := &heldTimers{}
	c := newPollCity(t, servertest.Options{PullTimer: timers.start})
	first := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	second := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	if p := outcome(t, first, "the first held pull's answer"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("the superseded pull answered %+v, %v", p.resp, p.err)
	}
	c.held(t, 1)
	timers.fire()
	if p := outcome(t, second, "the second pull's answer"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("the second pull answered %+v, %v", p.resp, p.err)
	}
}

// TestLongPoll_Cap: past the cap of held pulls a pull answers at once;
// a pull with something due never waits.
func TestLongPoll_Cap(t *testing.T) {
	timers := &heldTimers{}
	c := newPollCity(t, servertest.Options{PullTimer: timers.start, MaxPullWaiters: 1})
	held := c.poll(context.Background(), "a1", syncproto.MaxPullWait)
	c.held(t, 1)
	if p := outcome(t, c.poll(context.Background(), "b1", syncproto.MaxPullWait), "a pull past the cap"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("a pull past the cap answered %+v, %v", p.resp, p.err)
	}
	// From nothing, leadA has its whole scope due: answered at once.
	lead := c.dev["leadA"]
	first, err := lead.Pull(context.Background(), syncproto.PullRequest{DeviceID: lead.ID, Wait: syncproto.MaxPullWait})
	if err != nil || len(first.Changes) == 0 {
		t.Fatalf("a pull with changes due and a wait: %+v %v", first, err)
	}
	timers.fire()
	if p := outcome(t, held, "the held pull's answer"); p.err != nil || len(p.resp.Changes) != 0 {
		t.Fatalf("the held pull answered %+v, %v when its wait ended", p.resp, p.err)
	}
}

// TestLongPoll_OutlastsWriteTimeout: a pull held longer than the server's
// write timeout still gets its answer: the handler moves the connection's
// write deadline past the wait. The wait is the test (2 s against a 1 s
// timeout); everything else happens before it.
func TestLongPoll_OutlastsWriteTimeout(t *testing.T) {
	ctx := context.Background()
	const timeout = time.Second
	srv := servertest.Start(t, servertest.Options{Listen: httpapi.ListenConfig{ReadTimeout: timeout, WriteTimeout: timeout}})
	login, device := signInAdmin(t, srv)
	p, err := srv.App.Authenticate(login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	head, err := srv.App.Pull(ctx, p, &syncproto.PullRequest{DeviceID: device, Limit: syncproto.MaxPullLimit})
	if err != nil || head.More {
		t.Fatalf("first pull: %+v %v", head, err)
	}
	c := srv.Client()
	c.SetToken(login.AccessToken)
	resp, err := c.Pull(ctx, syncproto.PullRequest{DeviceID: device, Cursor: head.Cursor, Wait: 2 * int(timeout/time.Second)})
	if err != nil || len(resp.Changes) != 0 || resp.Reset {
		t.Fatalf("a pull held past the write timeout: %+v %v", resp, err)
	}
}
