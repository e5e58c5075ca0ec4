package clientsdk_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
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

// The tests of this file give a phone two addresses of one city, as the
// nodes of its cluster (Options.ServerURLs): here one server behind two
// shaping proxies (internal/netshape), each cut in its turn. What they
// show holds for a cluster because its nodes share the store: the token,
// the cursor and the client_seqs mean the same at every address.

// failoverOptions are a phone's on addrs, with a stall timeout short
// enough for a test to meet a black hole, and fast retries.
func failoverOptions(key []byte, transport http.RoundTripper, addrs ...string) clientsdk.Options {
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return clientsdk.Options{
		ServerURLs: addrs, DeviceName: "failover phone", Platform: "test", Key: key,
		HTTPClient:   &http.Client{Transport: transport},
		StallTimeout: 2 * time.Second,
		Retry:        clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 8},
	}
}

// syncOnward syncs c and fails unless the sync went on from where the
// device stood: no reset of its copy, no op sent again from the journal.
func syncOnward(t *testing.T, c *clientsdk.Client) clientsdk.Report {
	t.Helper()
	rep := mustSync(t, c)
	if rep.Reset || rep.Resent != 0 {
		t.Fatalf("the sync started over: %+v", rep)
	}
	return rep
}

// A phone syncs through the first address; the first loses the answer to
// a push the server applied and then refuses, and the phone goes on
// through the second at once, sending the same ops (the server answers
// them as duplicates); the second vanishes and the phone goes back to the
// first; restarted, it starts at the address that answered last. No sync
// resets the device, every op is in the server's log once, and the phone
// ends holding exactly the server's state for its scope.
func TestFailover_GoesOnAtTheNextAddress(t *testing.T) {
	ct := newCity(t)
	ids := ct.importMany(t, "FO", 6, servertest.UnitVillA1)
	first, second := ct.link(t, netshape.Link{}, 1), ct.link(t, netshape.Link{}, 2)
	dir, key := t.TempDir(), testKey(t)
	opts := failoverOptions(key, nil, first.URL(), second.URL())
	c, err := clientsdk.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	signIn(t, c, "a1")
	var ops []clientsdk.OpStatus
	record := func(i int) {
		t.Helper()
		op, err := c.RecordAttempt(ids[i], visit(syncproto.OutcomeDissuaded))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	syncOnward(t, c)
	record(0)
	record(1)
	if rep := syncOnward(t, c); rep.Applied != 2 {
		t.Fatalf("through the first address: %+v, want 2 applied", rep)
	}
	if n := second.Stats().Conns; n != 0 {
		t.Fatalf("%d connections to the second address while the first answered", n)
	}

	// The first address loses the answer to a push the server applied.
	record(2)
	record(3)
	if err := first.SetLink(netshape.Link{LoseAnswers: 1}); err != nil {
		t.Fatal(err)
	}
	if rep := syncOnward(t, c); rep.Applied != 2 || rep.Pulled == 0 {
		t.Fatalf("after the first lost the push's answer: %+v, want the 2 ops applied and pulled", rep)
	}
	if st := first.Stats(); st.LostAnswers == 0 {
		t.Fatalf("the first address lost no answer: %+v", st)
	}
	if c.Server() != second.URL() {
		t.Fatalf("the phone is at %s, want the second address %s", c.Server(), second.URL())
	}

	// The second vanishes (a black hole: connections stall) while the
	// first is back: the phone gives the second up at its stall timeout
	// and goes back to the first.
	if err := first.SetLink(netshape.Link{}); err != nil {
		t.Fatal(err)
	}
	if err := second.SetLink(netshape.Link{BlackHole: true}); err != nil {
		t.Fatal(err)
	}
	record(4)
	syncOnward(t, c)
	if c.Server() != first.URL() {
		t.Fatalf("the phone is at %s, want the first address %s again", c.Server(), first.URL())
	}

	// Restarted, the phone starts at the first, where it was answered
	// last: the second, refusing now, is not even tried.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = nil
	if err := second.SetLink(netshape.Link{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	tried := second.Stats().Conns
	c = openPhone(t, dir, opts)
	record(5)
	syncOnward(t, c)
	if n := second.Stats().Conns - tried; n != 0 {
		t.Fatalf("the restarted phone tried the second address %d times, not the one that answered last", n)
	}

	requireOnceInLog(t, ct.srv, opIDs(ops...))
	if st := c.Status(); st.Pending != 0 || st.Rejected != 0 {
		t.Fatalf("status %+v, want every op confirmed", st)
	}
	ct.requireHoldsScope(t, c, "a1")
}

// addrLog is a transport that notes each upload request with the address
// it went to, and cuts the first address for good (Refuse) when a PATCH
// there fails: the node died during the upload.
type addrLog struct {
	base  http.RoundTripper
	first *netshape.Proxy

	mu    sync.Mutex
	lines []string
	cut   bool
}

func (l *addrLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	at := "second"
	if req.URL.Host == l.first.Addr() {
		at = "first"
	}
	line := fmt.Sprintf("%s %s", at, req.Method)
	switch {
	case err != nil:
		line += " failed"
	case req.Method == http.MethodHead || req.Method == http.MethodPatch:
		line += fmt.Sprintf(" %d offset %s", resp.StatusCode, resp.Header.Get(syncproto.HeaderUploadOffset))
	default:
		line += " " + strconv.Itoa(resp.StatusCode)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(req.URL.Path, strings.TrimSuffix(syncproto.UploadsPath, "/")) {
		l.lines = append(l.lines, line)
	}
	if at == "first" && req.Method == http.MethodPatch && err != nil && !l.cut {
		l.cut = true
		_ = l.first.SetLink(netshape.Link{Refuse: true})
	}
	return resp, err
}

func (l *addrLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// A photo whose upload the first address cuts mid-way, and then refuses,
// finishes at the second: the upload is asked for there (HEAD) under the
// same path and resumed from the bytes the server holds, not made anew.
func TestFailover_PhotoUploadFinishesAtTheNextAddress(t *testing.T) {
	ct := newCity(t)
	id := ct.importWarnings(t, row("FP1", servertest.UnitVillA1))["FP1"]
	first, second := ct.link(t, netshape.Link{}, 3), ct.link(t, netshape.Link{}, 4)
	log := &addrLog{base: http.DefaultTransport.(*http.Transport).Clone(), first: first}
	c := openPhone(t, t.TempDir(), failoverOptions(testKey(t), log, first.URL(), second.URL()))
	signIn(t, c, "a1")
	syncOnward(t, c)

	photo := writePhoto(t, 400<<10, 7)
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	a := visit(syncproto.OutcomeDissuaded)
	a.Photos = []string{photo}
	op, err := c.RecordAttempt(id, a)
	if err != nil {
		t.Fatal(err)
	}
	// Each connection to the first is cut after 200 KB: the photo's
	// pieces (32, 64, 128 KB ...) are cut during the third.
	if err := first.SetLink(netshape.Link{CutAfter: 200_000}); err != nil {
		t.Fatal(err)
	}
	for try := 0; c.Status().Pending > 0 || c.Status().PhotosPending > 0; try++ {
		if try == 5 {
			t.Fatalf("after 5 syncs: %+v; uploads %q", c.Status(), log.all())
		}
		if _, err := c.Sync(context.Background()); err != nil {
			t.Logf("sync %d: %v", try, err)
		}
	}
	if m := ct.srv.Photo(t, hex.EncodeToString(sum[:])); m == nil || m.Size != int64(len(data)) {
		t.Fatalf("the server holds photo %+v, want its %d bytes", m, len(data))
	}
	if first.Stats().Cuts == 0 {
		t.Fatalf("the first address never cut the upload: %q", log.all())
	}
	// The upload was made once, at the first, and went on at the second
	// from a HEAD that found bytes stored there.
	var created, resumed, finished bool
	for _, l := range log.all() {
		switch {
		case l == "first POST 201":
			created = true
		case strings.HasPrefix(l, "second POST"):
			t.Fatalf("the upload was made anew at the second address: %q", log.all())
		case strings.HasPrefix(l, "second HEAD 200 offset "):
			off, _ := strconv.Atoi(strings.TrimPrefix(l, "second HEAD 200 offset "))
			resumed = resumed || off > 0
		case strings.HasPrefix(l, "second PATCH 204"):
			finished = true
		}
	}
	if !created || !resumed || !finished {
		t.Fatalf("want the upload made at the first, resumed and finished at the second: %q", log.all())
	}
	requireOnceInLog(t, ct.srv, opIDs(op))
}
