package clientsdk_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/internal/netshape"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Without a setting, the wait between tries is capped at a minute: after
// an outage the phone is back within about a minute, not five.
func TestSync_BackoffCappedAtAMinute(t *testing.T) {
	ct := newCity(t)
	net := faultnet.New(1, http.DefaultTransport)
	var mu sync.Mutex
	var waits []time.Duration
	c := a1Phone(t, ct, clientsdk.Options{
		HTTPClient: &http.Client{Transport: net},
		Retry: clientsdk.RetryPolicy{Attempts: 12, Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return nil
		}},
	})
	net.SetOffline(true)
	if _, err := c.Sync(context.Background()); err == nil {
		t.Fatal("an offline sync succeeded")
	}
	if len(waits) != 11 {
		t.Fatalf("%d waits between 12 tries", len(waits))
	}
	for i, d := range waits {
		if d <= 0 || d > clientsdk.DefaultRetryMax {
			t.Errorf("wait %d is %s, want within (0, %s]", i, d, clientsdk.DefaultRetryMax)
		}
	}
}

// A write during an outage does not bring the next try forward (fifty
// connection attempts in five minutes were seen); the platform's word that
// the network is back does, at once.
func TestBackground_NetworkBackSyncsAtOnce(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("NB1", servertest.UnitVillA1))
	net := faultnet.New(2, http.DefaultTransport)
	c := a1Phone(t, ct, clientsdk.Options{
		HTTPClient: &http.Client{Transport: net},
		// Backoff so long that only NetworkAvailable can end it in time.
		Retry: clientsdk.RetryPolicy{Initial: time.Hour, Max: time.Hour, Attempts: 1},
	})
	mustSync(t, c)
	net.SetOffline(true)
	c.StartBackgroundSync(time.Hour)
	defer c.StopBackgroundSync()
	// The loop's first sync fails offline; it is then backing off.
	testwait.Until(t, "the first background sync fails offline", func() bool { return c.Status().LastError != nil })
	before := net.Requests()
	if _, err := c.RecordAttempt(ids["NB1"], visit("dissuaded")); err != nil {
		t.Fatal(err)
	}
	// Nothing to wait for can show that no try happened; a try that
	// should not happen shows within this time on any machine that runs
	// the rest of the test.
	time.Sleep(300 * time.Millisecond)
	if n := net.Requests() - before; n != 0 {
		t.Fatalf("a write during the backoff made %d requests", n)
	}
	net.SetOffline(false)
	c.NetworkAvailable()
	testwait.Until(t, "the attempt reaches the server after NetworkAvailable", func() bool {
		w, err := ct.srv.Store.Warning(ids["NB1"])
		return err == nil && w != nil && len(w.Attempts) == 1
	})
}

// A long poll brings a new warning as soon as the server has it, without
// waiting out its wait, and applies it on the phone.
func TestPoll_NewWarningArrivesAtOnce(t *testing.T) {
	ct := newCity(t)
	c := a1Phone(t, ct, clientsdk.Options{
		PollWait: 50 * time.Second,
	})
	mustSync(t, c)
	type result struct {
		changed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		changed, err := c.Poll(context.Background())
		done <- result{changed, err}
	}()
	// The poll is held on the server: nothing comes back before the import.
	select {
	case r := <-done:
		t.Fatalf("the poll answered before any change: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	id := ct.importWarnings(t, row("LP1", servertest.UnitVillA1))["LP1"]
	select {
	case r := <-done:
		if r.err != nil || !r.changed {
			t.Fatalf("poll: changed %v, err %v", r.changed, r.err)
		}
	case <-time.After(time.Until(testwait.Deadline(t))):
		t.Fatal("the poll did not answer the new warning")
	}
	if _, ok := c.Warning(id); !ok {
		t.Fatal("the polled warning is not on the phone")
	}
}

// A poll with nothing new ends when its wait does, having changed nothing.
func TestPoll_NothingNew(t *testing.T) {
	ct := newCity(t)
	c := a1Phone(t, ct, clientsdk.Options{PollWait: time.Second})
	mustSync(t, c)
	changed, err := c.Poll(context.Background())
	if err != nil || changed {
		t.Fatalf("poll with nothing new: changed %v, err %v", changed, err)
	}
}

// In the foreground, background sync waits by long poll: a new warning
// reaches the phone although the interval is an hour.
func TestBackground_ForegroundSeesNewWarning(t *testing.T) {
	ct := newCity(t)
	c := a1Phone(t, ct, clientsdk.Options{})
	c.SetForeground(true)
	c.StartBackgroundSync(time.Hour)
	defer c.StopBackgroundSync()
	testwait.Until(t, "the first background sync", func() bool { return !c.Status().LastSync.IsZero() })
	id := ct.importWarnings(t, row("FG1", servertest.UnitVillA1))["FG1"]
	testwait.Until(t, "the new warning reaches the phone in the foreground", func() bool {
		_, ok := c.Warning(id)
		return ok
	})
}

// a1Phone opens an SDK on the city's server with opts and signs a1 in.
func a1Phone(t *testing.T, ct *city, opts clientsdk.Options) *clientsdk.Client {
	t.Helper()
	opts.ServerURL, opts.Key = ct.srv.URL, testKey(t)
	c := openPhone(t, t.TempDir(), opts)
	signIn(t, c, "a1")
	return c
}

// A request under way on a connection of the network that went away
// (the phone came back on another address) never moves again; the app's
// NetworkAvailable ends it and the sync sends it again on a new
// connection, instead of waiting out a stall timeout of many minutes.
func TestNetworkAvailable_EndsRequestOnDeadConnection(t *testing.T) {
	ct := newCity(t)
	id := ct.importWarnings(t, row("N1", servertest.UnitVillA1))["N1"]
	p := ct.link(t, netshape.Link{}, 5)
	c := openPhone(t, t.TempDir(), clientsdk.Options{
		ServerURL: p.URL(), Key: testKey(t), StallTimeout: time.Hour,
		Retry: clientsdk.RetryPolicy{Initial: time.Hour, Max: time.Hour, Attempts: 3},
	})
	signIn(t, c, "a1")
	mustSync(t, c) // leaves a kept connection, which the next push takes

	if err := p.SetLink(netshape.Link{BlackHole: true}); err != nil {
		t.Fatal(err)
	}
	p.Strand()
	if _, err := c.RecordAttempt(id, visit(syncproto.OutcomeDissuaded)); err != nil {
		t.Fatal(err)
	}
	pushing := make(chan struct{})
	stop := c.OnProgress(func(pr clientsdk.Progress) {
		if pr.Phase == "push" {
			select {
			case <-pushing:
			default:
				close(pushing)
			}
		}
	})
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := c.Sync(context.Background())
		done <- err
	}()
	<-pushing
	if err := p.SetLink(netshape.Link{}); err != nil {
		t.Fatal(err)
	}
	// Without the notice the sync would wait an hour (its stall
	// timeout), then an hour more (its backoff). The notice is repeated
	// now and then, in case the push took the stranded connection just
	// as the first one came.
	giveUp := time.After(2 * time.Minute)
	for {
		c.NetworkAvailable()
		select {
		case <-giveUp:
			t.Fatal("the sync is still stuck on the stranded connection")
		case err := <-done:
			if err != nil {
				t.Fatalf("sync after the network came back: %v", err)
			}
			w, err := ct.srv.Store.Warning(id)
			if err != nil || len(w.Attempts) != 1 {
				t.Fatalf("the server holds %d attempts (%v), want 1", len(w.Attempts), err)
			}
			return
		case <-time.After(5 * time.Second):
		}
	}
}
