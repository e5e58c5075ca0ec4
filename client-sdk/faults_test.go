package clientsdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// This file holds the focused tests of each error answer the SDK must follow
// (PROTOCOL.md sections 2 and 4), and the helpers the convergence and crash
// tests share: a city server with a clock the test moves, devices with a
// fault-injecting transport, and checks against the server's own state.

// ---------------------------------------------------------------- helpers

// ftCity is a running server with the small test city, on a clock the test
// moves.
type ftCity struct {
	srv   *servertest.Server
	ids   map[string]string
	clock *fakeclock.Offset
	// stop closes the server once, whoever asks first.
	stop func()
	// fresh are the devices pullFresh signs in, one per user, kept
	// because signing in costs an argon2id hash.
	fresh map[string]*servertest.Device
}

// ftStartCity starts a server over a new store in dir (a temporary one when
// empty) and loads the city. The server closes when the test ends.
func ftStartCity(t testing.TB, dir string) *ftCity {
	t.Helper()
	clock := &fakeclock.Offset{}
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := servertest.Open(servertest.Options{Dir: dir, Now: clock.Now})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := srv.Close(); err != nil {
				t.Errorf("close server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &ftCity{srv: srv, ids: srv.LoadCity(t), clock: clock, stop: stop}
}

// ftFeedRow is one warning of the daily feed.
func ftFeedRow(ext, unit string) syncproto.FeedWarning {
	return syncproto.FeedWarning{
		ExternalID: ext, Name: "测试" + ext, Phone: "1380000" + fmt.Sprintf("%04d", len(ext)), IDTail: "123X",
		Address: "某村某组" + ext, Unit: unit, FraudType: "刷单返利", Risk: syncproto.RiskHigh,
		WarnedAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
	}
}

// importRows imports rows as center1 over a clean network and returns the
// new ids by external id.
func (ct *ftCity) importRows(t testing.TB, rows ...syncproto.FeedWarning) map[string]string {
	t.Helper()
	center := ct.srv.Login(t, "center1", servertest.CityPassword)
	resp, err := center.ImportFeed(context.Background(), rows)
	if err != nil || len(resp.Invalid) > 0 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	ids := map[string]string{}
	for _, c := range resp.Created {
		ids[c.ExternalID] = c.ID
	}
	return ids
}

// ftSleepLog records every backoff the SDK asks for and returns at once. When
// the device's latest answer was a 429, it checks the wait is at least the
// Retry-After it carried.
type ftSleepLog struct {
	mu         sync.Mutex
	net        *faultnet.Transport
	waits      []time.Duration
	checked429 int
	violations []string
}

func (s *ftSleepLog) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	if s.net != nil {
		if last := s.net.Last(); last.Status == http.StatusTooManyRequests && last.RetryAfter >= 0 {
			s.checked429++
			if d < time.Duration(last.RetryAfter)*time.Second {
				s.violations = append(s.violations, fmt.Sprintf("waited %v after a 429 with Retry-After: %d", d, last.RetryAfter))
			}
		}
	}
	return ctx.Err()
}

func (s *ftSleepLog) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// ftDevice is one phone: its SDK folder, key, network and backoff log.
type ftDevice struct {
	name   string
	user   string
	dir    string
	key    []byte
	net    *faultnet.Transport
	sleeps *ftSleepLog
	opts   clientsdk.Options
	c      *clientsdk.Client
}

// newDevice opens an SDK in a new folder for username and logs it in over
// a clean network. tweak, when set, changes its options first.
func (ct *ftCity) newDevice(t testing.TB, username string, seed uint64, tweak func(*clientsdk.Options)) *ftDevice {
	t.Helper()
	d := &ftDevice{name: username, user: username, dir: t.TempDir(), key: testKey(t), net: faultnet.New(seed, nil)}
	d.sleeps = &ftSleepLog{net: d.net}
	d.opts = clientsdk.Options{
		ServerURL: ct.srv.URL, DeviceName: "faults " + username, Platform: "test", Key: d.key,
		HTTPClient: &http.Client{Transport: d.net, Timeout: 10 * time.Second},
		Retry:      clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4, Sleep: d.sleeps.Sleep},
	}
	if tweak != nil {
		tweak(&d.opts)
	}
	d.open(t)
	t.Cleanup(d.close)
	if _, err := d.c.Login(context.Background(), username, servertest.CityPassword); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return d
}

func (d *ftDevice) open(t testing.TB) {
	t.Helper()
	c, err := clientsdk.Open(d.dir, d.opts)
	if err != nil {
		t.Fatalf("open %s: %v", d.name, err)
	}
	d.c = c
}

func (d *ftDevice) close() {
	if d.c != nil {
		_ = d.c.Close()
		d.c = nil
	}
}

func (d *ftDevice) mustSync(t testing.TB) clientsdk.Report {
	t.Helper()
	rep, err := d.c.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v", d.name, err)
	}
	return rep
}

// record records an attempt and returns its op and the attempt's id, read
// from the device's own view (which shows pending ops applied).
func (d *ftDevice) record(t testing.TB, warningID, outcome string, reached bool) (clientsdk.OpStatus, string) {
	t.Helper()
	a := clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: reached, Outcome: outcome, Notes: "劝阻记录"}
	if outcome == syncproto.OutcomeAlreadyDefrauded {
		a.LossFen = 123400
	}
	before, _ := d.c.Warning(warningID)
	op, err := d.c.RecordAttempt(warningID, a)
	if err != nil {
		t.Fatalf("%s: record on %s: %v", d.name, warningID, err)
	}
	after, ok := d.c.Warning(warningID)
	if !ok || len(after.Attempts) != len(before.Attempts)+1 {
		t.Fatalf("%s: the view of %s does not show the attempt just recorded (%d -> %d attempts)", d.name, warningID, len(before.Attempts), len(after.Attempts))
	}
	return op, after.Attempts[len(after.Attempts)-1].ID
}

// ------------------------------------------------------- server-side truth

// ftPulled is a user's scope as a fresh device pulls it from an empty cursor.
type ftPulled struct {
	warnings map[string]*syncproto.Warning
	units    map[string]syncproto.Unit
	users    map[string]syncproto.DirectoryUser
}

// pullFresh pulls everything in username's scope from an empty cursor, over
// a clean network, from a device of its own.
func (ct *ftCity) pullFresh(t testing.TB, username string) ftPulled {
	t.Helper()
	if ct.fresh == nil {
		ct.fresh = map[string]*servertest.Device{}
	}
	dev := ct.fresh[username]
	if dev == nil || dev.BaseURL != ct.srv.URL {
		dev = ct.srv.Login(t, username, servertest.CityPassword)
		ct.fresh[username] = dev
	}
	p := ftPulled{warnings: map[string]*syncproto.Warning{}, units: map[string]syncproto.Unit{}, users: map[string]syncproto.DirectoryUser{}}
	cursor := ""
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatalf("pull of %s does not end", username)
		}
		resp, err := dev.Pull(context.Background(), syncproto.PullRequest{DeviceID: dev.ID, Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if syncproto.ErrorCode(err) == syncproto.CodeTokenExpired {
			// The test moved the server's clock: sign in again.
			delete(ct.fresh, username)
			return ct.pullFresh(t, username)
		}
		if err != nil {
			t.Fatalf("fresh pull as %s: %v", username, err)
		}
		for _, ch := range resp.Changes {
			switch ch.Entity {
			case syncproto.EntityWarning:
				if w, ok := ch.Data.(*syncproto.Warning); ok && ch.Kind == syncproto.ChangePut {
					p.warnings[ch.ID] = w
				} else {
					delete(p.warnings, ch.ID)
				}
			case syncproto.EntityUnit:
				if u, ok := ch.Data.(*syncproto.Unit); ok && ch.Kind == syncproto.ChangePut {
					p.units[u.Code] = *u
				} else {
					delete(p.units, ch.ID)
				}
			case syncproto.EntityUser:
				if u, ok := ch.Data.(*syncproto.DirectoryUser); ok && ch.Kind == syncproto.ChangePut {
					p.users[u.ID] = *u
				} else {
					delete(p.users, ch.ID)
				}
			}
		}
		cursor = resp.Cursor
		if !resp.More {
			return p
		}
	}
}

// warningDiff is how a device's copy of a warning differs from the
// server's state, field by field; "" when it holds exactly that state. A
// county or city lead's phone pulls summaries (Options.PullDetail): its
// copy must then be the summary of the server's state.
func warningDiff(device, server *syncproto.Warning) string {
	if device.Summary {
		server = server.Summarize()
	}
	return cmp.Diff(server, device, cmpopts.EquateEmpty())
}

// ftDigest sums a warning up in one line, for a failure's message.
func ftDigest(w *syncproto.Warning) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v%d %s unit=%s assignee=%s outcome=%s esc=%v past=%v attempts=[", w.Version, w.Status, w.Unit, w.Assignee, w.Outcome, w.Escalated, w.PastAssignees)
	for _, a := range w.Attempts {
		fmt.Fprintf(&b, "%s/%s/%s ", a.ID, a.By, a.Outcome)
	}
	b.WriteString("] missing_photos=[")
	for _, m := range w.MissingPhotos {
		fmt.Fprintf(&b, "%s ", m)
	}
	b.WriteString("] reviews=[")
	for _, r := range w.Reviews {
		fmt.Fprintf(&b, "%s/%s ", r.By, r.Decision)
	}
	b.WriteString("] flags=[")
	for _, f := range w.Flags {
		fmt.Fprintf(&b, "%s/%s/%v ", f.Code, f.OpID, f.Resolved)
	}
	b.WriteString("]")
	return b.String()
}

// ftCheckHoldsServerState fails unless the device's view is exactly the
// server's state of the user's scope: the same warnings, each at the same
// version with the same status, assignee, attempts, reviews and flags; and
// for a lead, the same directory.
func ftCheckHoldsServerState(t testing.TB, ct *ftCity, d *ftDevice) {
	t.Helper()
	want := ct.pullFresh(t, d.user)
	got := map[string]*syncproto.Warning{}
	for _, w := range d.c.Warnings(clientsdk.Filter{}) {
		if len(w.Ops) > 0 {
			t.Errorf("%s: warning %s still has %d ops not confirmed", d.name, w.ID, len(w.Ops))
		}
		got[w.ID] = &w.Warning
	}
	for id, w := range want.warnings {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: lacks warning %s the server has in its scope: %s", d.name, id, ftDigest(w))
		case warningDiff(g, w) != "":
			t.Errorf("%s: warning %s differs from the server (-server +device):\n%s", d.name, id, warningDiff(g, w))
		}
	}
	for id, g := range got {
		if _, ok := want.warnings[id]; !ok {
			t.Errorf("%s: holds warning %s that is not in its scope on the server: %s", d.name, id, ftDigest(g))
		}
	}
	units := d.c.Units()
	if len(units) != len(want.units) {
		t.Errorf("%s: holds %d units, the server's scope has %d", d.name, len(units), len(want.units))
	}
	for _, u := range units {
		if want.units[u.Code] != u {
			t.Errorf("%s: unit %s = %+v, server %+v", d.name, u.Code, u, want.units[u.Code])
		}
	}
	cadres := d.c.Cadres()
	if len(cadres) != len(want.users) {
		t.Errorf("%s: holds %d cadres, the server's scope has %d", d.name, len(cadres), len(want.users))
	}
	for _, u := range cadres {
		if want.users[u.ID] != u {
			t.Errorf("%s: cadre %s = %+v, server %+v", d.name, u.ID, u, want.users[u.ID])
		}
	}
}

// attemptCounts counts each attempt id across every warning of the city.
func (ct *ftCity) attemptCounts(t testing.TB) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, w := range ct.pullFresh(t, "center1").warnings {
		for _, a := range w.Attempts {
			n[a.ID]++
		}
	}
	return n
}

// ftServerLog reads the server's append-only log straight from its store.
func ftServerLog(t testing.TB, srv *servertest.Server) []store.LogEntry {
	t.Helper()
	var out []store.LogEntry
	err := srv.Store.EachLogEntry(func(_ uint64, e *store.LogEntry) error {
		out = append(out, *e)
		return nil
	})
	if err != nil {
		t.Fatalf("read server log: %v", err)
	}
	return out
}

// ftOpsInLog counts the log entries of each client op id.
func ftOpsInLog(t testing.TB, srv *servertest.Server) map[string][]store.LogEntry {
	t.Helper()
	m := map[string][]store.LogEntry{}
	for _, e := range ftServerLog(t, srv) {
		if e.Op != nil {
			m[e.Op.ID] = append(m[e.Op.ID], e)
		}
	}
	return m
}

// ftCheckOnceInLog fails unless each op id is in the server's log exactly
// once: every op the devices made was handled, none twice.
func ftCheckOnceInLog(t testing.TB, srv *servertest.Server, ftOpIDs []string) map[string][]store.LogEntry {
	t.Helper()
	logged := ftOpsInLog(t, srv)
	for _, id := range ftOpIDs {
		switch es := logged[id]; len(es) {
		case 1:
		case 0:
			t.Errorf("op %s is not in the server's log: lost", id)
		default:
			var seqs []string
			for _, e := range es {
				seqs = append(seqs, fmt.Sprintf("log seq %d client_seq %d %s/%s", e.Seq, e.Op.ClientSeq, e.Result.Status, e.Result.Code))
			}
			t.Errorf("op %s (%s) is in the server's log %d times: %s", id, es[0].Op.Type, len(es), strings.Join(seqs, "; "))
		}
	}
	return logged
}

func ftOpIDs(ops ...clientsdk.OpStatus) []string {
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.OpID
	}
	return ids
}

// ftPaths lists the outcomes of a transport's recent requests as
// "path status code" strings.
func ftPaths(h []faultnet.Outcome) []string {
	out := make([]string, len(h))
	for i, o := range h {
		out[i] = fmt.Sprintf("%s %d %s", strings.TrimPrefix(o.Path, "/v1/"), o.Status, o.Code)
	}
	return out
}

// ------------------------------------------------------------------- tests

// TestFaults_TokenExpired: an access token that expires between two steps
// of a sync (the server's clock moves past its 15 minutes) gets
// 401 token_expired; the SDK refreshes it and carries on in the same try.
func TestFaults_TokenExpired(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("TE1", servertest.UnitVillA1), ftFeedRow("TE2", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 1, nil)
	d.mustSync(t)

	t.Run("BetweenPushAndPull", func(t *testing.T) {
		op1, att1 := d.record(t, ids["TE1"], syncproto.OutcomeRefused, true)
		op2, att2 := d.record(t, ids["TE2"], syncproto.OutcomeDissuaded, true)
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			resp, err := next()
			if r.Path() == "/v1/sync/push" && err == nil && resp.StatusCode == http.StatusOK {
				ct.clock.Add(16 * time.Minute)
			}
			return resp, err
		})
		defer d.net.SetHook(nil)
		d.net.ResetHistory()
		rep, err := d.c.Sync(ctx)
		if err != nil {
			t.Fatalf("sync: %v (requests %v)", err, ftPaths(d.net.History()))
		}
		got := ftPaths(d.net.History())
		want := []string{"sync/push 200 ", "sync/pull 401 token_expired", "auth/refresh 200 ", "sync/pull 200 "}
		if !slices.Equal(got, want) {
			t.Fatalf("requests = %q, want %q", got, want)
		}
		if rep.Attempts != 1 || rep.Applied != 2 {
			t.Fatalf("report %+v: want 1 try and 2 applied", rep)
		}
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(op1, op2))
		counts := ct.attemptCounts(t)
		if counts[att1] != 1 || counts[att2] != 1 {
			t.Fatalf("attempts on the server: %d and %d, want 1 each", counts[att1], counts[att2])
		}
		ftCheckHoldsServerState(t, ct, d)
	})

	t.Run("BetweenSyncs", func(t *testing.T) {
		ct.clock.Add(16 * time.Minute)
		op, att := d.record(t, ids["TE1"], syncproto.OutcomeUnreachable, false)
		d.net.ResetHistory()
		if _, err := d.c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		got := ftPaths(d.net.History())
		want := []string{"sync/push 401 token_expired", "auth/refresh 200 ", "sync/push 200 ", "sync/pull 200 "}
		if !slices.Equal(got, want) {
			t.Fatalf("requests = %q, want %q", got, want)
		}
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
		if n := ct.attemptCounts(t)[att]; n != 1 {
			t.Fatalf("attempt on the server %d times", n)
		}
		ftCheckHoldsServerState(t, ct, d)
	})
}

// TestFaults_RateLimited: a 429 makes the SDK wait at least Retry-After
// before it tries again, whatever its own backoff would be.
func TestFaults_RateLimited(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("RL1", servertest.UnitVillA1))
	for i, tc := range []struct {
		name       string
		path       string
		header     string
		envelope   bool
		atLeast    time.Duration
		wantStatus int
	}{
		{"PushRetryAfter1", "/v1/sync/push", "1", true, time.Second, 429},
		{"PullRetryAfter1", "/v1/sync/pull", "1", true, time.Second, 429},
		{"PushRetryAfter0", "/v1/sync/push", "0", true, 0, 429},
		{"NoEnvelope", "/v1/sync/push", "1", false, time.Second, 429},
		{"HTTPDate", "/v1/sync/pull", "date", true, 30 * time.Second, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ct.newDevice(t, "a1", uint64(10+i), nil)
			d.mustSync(t)
			op, att := d.record(t, ids["RL1"], syncproto.OutcomeRefused, true)
			answered := false
			d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
				if r.Path() != tc.path || answered {
					return next()
				}
				answered = true
				ra := tc.header
				if ra == "date" {
					// A minute ahead of the SDK's clock (the wall
					// clock here): the wait read from it is over 30 s
					// however long the answer takes to arrive, and the
					// test's sleeps are not real.
					ra = time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
				}
				h := http.Header{"Retry-After": {ra}}
				if !tc.envelope {
					return &http.Response{StatusCode: 429, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
						Header: http.Header{"Retry-After": {ra}, "Content-Type": {"text/html"}}, Body: http.NoBody, Request: r.HTTP}, nil
				}
				return faultnet.ErrorResponse(r.HTTP, 429, syncproto.CodeRateLimited, "slow down", nil, h), nil
			})
			rep, err := d.c.Sync(ctx)
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			waits := d.sleeps.Waits()
			if !answered || len(waits) != 1 || rep.Attempts != 2 {
				t.Fatalf("answered 429: %v; waits %v; report %+v: want one wait and 2 tries", answered, waits, rep)
			}
			if waits[0] < tc.atLeast {
				t.Fatalf("the SDK waited %v after a 429 with Retry-After %q, want at least %v", waits[0], tc.header, tc.atLeast)
			}
			if tc.atLeast == 0 && waits[0] > d.opts.Retry.Max {
				t.Fatalf("Retry-After 0: waited %v, more than the policy's max %v", waits[0], d.opts.Retry.Max)
			}
			ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
			if n := ct.attemptCounts(t)[att]; n != 1 {
				t.Fatalf("attempt on the server %d times", n)
			}
		})
	}
}

// TestFaults_Unavailable: 503 (with or without the protocol's envelope) is
// retried with backoff; once the tries run out the ops wait, unlost, for
// the next sync.
func TestFaults_Unavailable(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("U1", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 20, nil)
	d.mustSync(t)

	unavailable := func(r *faultnet.Request, envelope bool) *http.Response {
		if envelope {
			return faultnet.ErrorResponse(r.HTTP, 503, syncproto.CodeUnavailable, "overloaded", nil, nil)
		}
		return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"text/html"}}, Body: http.NoBody, Request: r.HTTP}
	}

	t.Run("Retried", func(t *testing.T) {
		op, att := d.record(t, ids["U1"], syncproto.OutcomeRefused, true)
		pushes, pulls := 0, 0
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			switch r.Path() {
			case "/v1/sync/push":
				if pushes++; pushes <= 2 {
					return unavailable(r, pushes == 1), nil
				}
			case "/v1/sync/pull":
				if pulls++; pulls == 1 {
					return unavailable(r, true), nil
				}
			}
			return next()
		})
		defer d.net.SetHook(nil)
		before := len(d.sleeps.Waits())
		rep, err := d.c.Sync(ctx)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		waits := d.sleeps.Waits()[before:]
		if rep.Attempts != 4 || len(waits) != 3 {
			t.Fatalf("report %+v, waits %v: want 4 tries and 3 waits", rep, waits)
		}
		for _, w := range waits {
			if w <= 0 || w > d.opts.Retry.Max {
				t.Fatalf("wait %v outside (0, %v]", w, d.opts.Retry.Max)
			}
		}
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
		if n := ct.attemptCounts(t)[att]; n != 1 {
			t.Fatalf("attempt on the server %d times", n)
		}
	})

	t.Run("TriesRunOut", func(t *testing.T) {
		op, att := d.record(t, ids["U1"], syncproto.OutcomeDissuaded, true)
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			return unavailable(r, true), nil
		})
		_, err := d.c.Sync(ctx)
		if syncproto.ErrorCode(err) != syncproto.CodeUnavailable || !clientsdk.Transient(err) {
			t.Fatalf("sync with the server down: %v, want a transient unavailable", err)
		}
		if ops := d.c.Ops(); len(ops) != 1 || ops[0].OpID != op.OpID || ops[0].State == "rejected" {
			t.Fatalf("ops after failed sync: %+v", ops)
		}
		if st := d.c.Status(); st.LastError == nil || st.Pending != 1 {
			t.Fatalf("status %+v", st)
		}
		d.net.SetHook(nil)
		d.mustSync(t)
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
		if n := ct.attemptCounts(t)[att]; n != 1 {
			t.Fatalf("attempt on the server %d times", n)
		}
		ftCheckHoldsServerState(t, ct, d)
	})
}

// TestFaults_PayloadTooLarge: a push answered 413 is split until it fits;
// a single op that cannot be split fails the sync but stays queued.
func TestFaults_PayloadTooLarge(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	var rows []syncproto.FeedWarning
	for i := range 4 {
		rows = append(rows, ftFeedRow(fmt.Sprintf("PL%d", i), servertest.UnitVillA1))
	}
	idByExt := ct.importRows(t, rows...)
	d := ct.newDevice(t, "a1", 30, nil)
	d.mustSync(t)

	// The "server" takes at most maxOps ops per push: more is 413 with the
	// protocol's envelope, as a smaller body limit would answer.
	const maxOps = 2
	var sizes []int
	var seqs []uint64
	limit := maxOps
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/sync/push" {
			return next()
		}
		var req syncproto.PushRequest
		if err := r.Decode(&req); err != nil {
			t.Errorf("decode push: %v", err)
			return next()
		}
		if len(req.Ops) > limit {
			return faultnet.ErrorResponse(r.HTTP, 413, syncproto.CodePayloadTooLarge, "the body is too large", nil, nil), nil
		}
		sizes = append(sizes, len(req.Ops))
		for _, op := range req.Ops {
			seqs = append(seqs, op.ClientSeq)
		}
		return next()
	})
	defer d.net.SetHook(nil)

	var ops []clientsdk.OpStatus
	var atts []string
	for i := range 7 {
		op, att := d.record(t, idByExt[fmt.Sprintf("PL%d", i%4)], syncproto.OutcomeRefused, i%2 == 0)
		ops, atts = append(ops, op), append(atts, att)
	}
	rep, err := d.c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if rep.Applied != 7 {
		t.Fatalf("report %+v: want 7 applied", rep)
	}
	for _, n := range sizes {
		if n > maxOps {
			t.Fatalf("a push of %d ops reached the server, limit %d", n, maxOps)
		}
	}
	if !slices.IsSorted(seqs) || len(seqs) != 7 {
		t.Fatalf("client_seqs pushed %v: want 7 in order", seqs)
	}
	ftCheckOnceInLog(t, ct.srv, ftOpIDs(ops...))
	counts := ct.attemptCounts(t)
	for _, a := range atts {
		if counts[a] != 1 {
			t.Fatalf("attempt %s on the server %d times", a, counts[a])
		}
	}
	if left := d.c.Ops(); len(left) != 0 {
		t.Fatalf("ops left: %+v", left)
	}

	t.Run("OneOpTooLarge", func(t *testing.T) {
		limit = 0
		op, att := d.record(t, idByExt["PL0"], syncproto.OutcomeDissuaded, true)
		_, err := d.c.Sync(ctx)
		if syncproto.ErrorCode(err) != syncproto.CodePayloadTooLarge {
			t.Fatalf("sync of one op the server refuses as too large: %v", err)
		}
		if left := d.c.Ops(); len(left) != 1 || left[0].OpID != op.OpID || left[0].State == "rejected" {
			t.Fatalf("ops: %+v, want the op still queued", left)
		}
		limit = maxOps
		d.mustSync(t)
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
		if n := ct.attemptCounts(t)[att]; n != 1 {
			t.Fatalf("attempt on the server %d times", n)
		}
	})
}

// TestFaults_OutOfOrder: a 409 out_of_order says where the server stands;
// the SDK numbers its unsent ops again from there and sends them, each
// handled by the server exactly once.
func TestFaults_OutOfOrder(t *testing.T) {
	ctx := context.Background()

	// Fabricated: the transport answers the first push 409 with an
	// expected_client_seq below the batch's first, then lets the real
	// server answer. The server really has more than it said, so the
	// renumbered ops meet seq_reused, and the SDK numbers them again.
	t.Run("Fabricated", func(t *testing.T) {
		ct := ftStartCity(t, "")
		ids := ct.importRows(t, ftFeedRow("OO1", servertest.UnitVillA1), ftFeedRow("OO2", servertest.UnitVillA1))
		d := ct.newDevice(t, "a1", 40, nil)
		d.mustSync(t)
		var all []clientsdk.OpStatus
		var atts []string
		for i := range 3 {
			op, att := d.record(t, ids["OO1"], syncproto.OutcomeRefused, i == 0)
			all, atts = append(all, op), append(atts, att)
		}
		d.mustSync(t)
		var late []clientsdk.OpStatus
		for range 3 {
			op, att := d.record(t, ids["OO2"], syncproto.OutcomeUnreachable, false)
			late, atts = append(late, op), append(atts, att)
		}
		if esc, err := d.c.Escalate(ids["OO2"], "家属不配合"); err != nil {
			t.Fatal(err)
		} else {
			late = append(late, esc)
		}
		all = append(all, late...)
		faked := false
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			if r.Path() != "/v1/sync/push" || faked {
				return next()
			}
			faked = true
			var req syncproto.PushRequest
			if err := r.Decode(&req); err != nil || len(req.Ops) == 0 || req.Ops[0].ClientSeq != 4 {
				t.Errorf("first push %+v %v: want the batch from client_seq 4", req.Ops, err)
			}
			return faultnet.ErrorResponse(r.HTTP, 409, syncproto.CodeOutOfOrder, "send from client_seq 2",
				map[string]any{"expected_client_seq": 2}, nil), nil
		})
		if _, err := d.c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if !faked {
			t.Fatal("no push was answered 409")
		}
		d.net.SetHook(nil)
		d.mustSync(t)
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(all...))
		counts := ct.attemptCounts(t)
		for _, a := range atts {
			if counts[a] != 1 {
				t.Errorf("attempt %s on the server %d times", a, counts[a])
			}
		}
		ftCheckHoldsServerState(t, ct, d)
	})

	// RestoredServer: the real thing. The server is restored from a backup
	// that holds the first of two ops this device had pushed (both
	// acknowledged, neither confirmed by a pull yet). The next push meets a
	// real 409 from the restored server; the SDK must send again only the
	// op the backup lacks, and not the one the server still has.
	t.Run("RestoredServer", func(t *testing.T) {
		dir := t.TempDir()
		ct := ftStartCity(t, dir)
		ids := ct.importRows(t, ftFeedRow("RS1", servertest.UnitVillA1), ftFeedRow("RS2", servertest.UnitVillA1), ftFeedRow("RS3", servertest.UnitVillA1))
		cadre := ct.newDevice(t, "a1", 41, nil)
		cadre.mustSync(t)
		for _, ext := range []string{"RS1", "RS2", "RS3"} {
			cadre.record(t, ids[ext], syncproto.OutcomeDissuaded, true)
		}
		cadre.mustSync(t)
		lead := ct.newDevice(t, "leadA", 42, nil)
		lead.mustSync(t)

		// Pushes land, pulls fail: the ops stay in the outbox as applied.
		lead.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			if r.Path() == "/v1/sync/pull" {
				return nil, fmt.Errorf("%w: pull lost", faultnet.ErrInjected)
			}
			return next()
		})
		ret1, err := lead.c.Review(ids["RS1"], syncproto.DecisionReturn, "补充照片")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err == nil {
			t.Fatal("sync with pulls failing succeeded")
		}
		var backup bytes.Buffer
		if _, err := ct.srv.Store.Backup(ctx, &backup); err != nil {
			t.Fatalf("hot backup: %v", err)
		}
		ret2, err := lead.c.Review(ids["RS2"], syncproto.DecisionApprove, "属实")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err == nil {
			t.Fatal("sync with pulls failing succeeded")
		}
		for _, op := range lead.c.Ops() {
			if op.State != "applied" {
				t.Fatalf("before the restore: op %s is %s, want applied", op.OpID, op.State)
			}
		}

		// Restore: a new server over the backup, which Restore gives a new
		// incarnation.
		ct.stop()
		restoredDir := t.TempDir()
		if _, err := storefile.Restore(ctx, &backup, restoredDir, storefile.RestoreOptions{}); err != nil {
			t.Fatalf("restore: %v", err)
		}
		restored, err := servertest.Open(servertest.Options{Dir: restoredDir, Now: ct.clock.Now})
		if err != nil {
			t.Fatalf("open restored server: %v", err)
		}
		t.Cleanup(func() { _ = restored.Close() })
		ct.srv = restored
		for _, d := range []*ftDevice{cadre, lead} {
			if err := d.net.Retarget(restored.URL); err != nil {
				t.Fatal(err)
			}
		}
		lead.net.SetHook(nil)
		lead.net.ResetHistory()

		ret3, err := lead.c.Review(ids["RS3"], syncproto.DecisionReturn, "重新核实")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err != nil {
			t.Fatalf("sync after the restore: %v (requests %v)", err, ftPaths(lead.net.History()))
		}
		if h := ftPaths(lead.net.History()); len(h) == 0 || h[0] != "sync/push 409 out_of_order" {
			t.Fatalf("requests after the restore %v: want a real 409 first", h)
		}
		lead.mustSync(t)
		if rej := lead.c.Rejected(); len(rej) != 0 {
			t.Errorf("ops rejected after the restore: %+v", rej)
		}
		if ops := lead.c.Ops(); len(ops) != 0 {
			t.Errorf("ops left: %+v", ops)
		}
		// ret1 was in the backup: once. ret2 was lost with the restore and
		// sent again: once. ret3 is new: once.
		ftCheckOnceInLog(t, ct.srv, ftOpIDs(ret1, ret2, ret3))
		p := ct.pullFresh(t, "leadA")
		if w := p.warnings[ids["RS1"]]; len(w.Reviews) != 1 || w.Status != syncproto.WarningAssigned {
			t.Errorf("RS1 after the restore: %s, want returned once", ftDigest(w))
		}
		if w := p.warnings[ids["RS2"]]; len(w.Reviews) != 1 || w.Status != syncproto.WarningClosed {
			t.Errorf("RS2 after the restore: %s, want approved once", ftDigest(w))
		}
		ftCheckHoldsServerState(t, ct, lead)
	})
}

// TestFaults_CursorExpired: a 410 cursor_expired makes the SDK pull again
// from an empty cursor, and it still ends with exactly the server's state
// (a warning that left its scope meanwhile is gone).
func TestFaults_CursorExpired(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("CE1", servertest.UnitVillA2), ftFeedRow("CE2", servertest.UnitVillA2))
	lead := ct.newDevice(t, "leadA", 50, nil)
	lead.mustSync(t)
	for _, ext := range []string{"CE1", "CE2"} {
		if _, err := lead.c.Assign(ids[ext], ct.ids["a2x"]); err != nil {
			t.Fatal(err)
		}
	}
	lead.mustSync(t)
	d := ct.newDevice(t, "a2x", 51, nil)
	d.mustSync(t)
	if n := len(d.c.Warnings(clientsdk.Filter{})); n != 2 {
		t.Fatalf("a2x holds %d warnings, want 2", n)
	}
	// CE1 leaves a2x's scope; a2x records on CE2 meanwhile.
	if _, err := lead.c.Assign(ids["CE1"], ct.ids["a2y"]); err != nil {
		t.Fatal(err)
	}
	lead.mustSync(t)
	op, att := d.record(t, ids["CE2"], syncproto.OutcomeDissuaded, true)

	var cursors []string
	expired := false
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/sync/pull" {
			return next()
		}
		var req syncproto.PullRequest
		if err := r.Decode(&req); err != nil {
			t.Errorf("decode pull: %v", err)
		}
		cursors = append(cursors, req.Cursor)
		if !expired {
			expired = true
			return faultnet.ErrorResponse(r.HTTP, 410, syncproto.CodeCursorExpired, "the cursor cannot be read; start again", nil, nil), nil
		}
		return next()
	})
	defer d.net.SetHook(nil)
	rep, err := d.c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(cursors) < 2 || cursors[0] == "" || cursors[1] != "" {
		t.Fatalf("pull cursors %q: want the stored cursor, then an empty one", cursors)
	}
	if rep.Attempts != 1 {
		t.Fatalf("report %+v: cursor_expired should not cost a try", rep)
	}
	if _, ok := d.c.Warning(ids["CE1"]); ok {
		t.Fatal("a2x still holds CE1, reassigned to a2y")
	}
	ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
	if n := ct.attemptCounts(t)[att]; n != 1 {
		t.Fatalf("attempt on the server %d times", n)
	}
	ftCheckHoldsServerState(t, ct, d)
}

// TestFaults_DeviceRevoked: a device revoked with wipe deletes every
// warning and the directory, and keeps the ops it never sent for hand-over
// (DESIGN.md "The SDK"); it syncs no more.
func TestFaults_DeviceRevoked(t *testing.T) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("DR1", servertest.UnitVillA1), ftFeedRow("DR2", servertest.UnitVillA1))

	checkWiped := func(t *testing.T, d *ftDevice, unsent []clientsdk.OpStatus) {
		t.Helper()
		if n := len(d.c.Warnings(clientsdk.Filter{})); n != 0 {
			t.Errorf("a wiped ftDevice still holds %d warnings", n)
		}
		if n := len(d.c.Units()) + len(d.c.Cadres()); n != 0 {
			t.Errorf("a wiped ftDevice still holds %d directory entries", n)
		}
		st := d.c.Status()
		if !st.Revoked || !st.Wiped || st.LoggedIn {
			t.Errorf("status %+v: want revoked, wiped, logged out", st)
		}
		var got []string
		for _, op := range d.c.HandOver() {
			got = append(got, op.ID)
		}
		want := ftOpIDs(unsent...)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("HandOver() = %v, want exactly the unsent ops %v", got, want)
		}
		if _, err := d.c.RecordAttempt(ids["DR1"], ftVisitAttempt()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("record on a revoked ftDevice: %v", err)
		}
		if _, err := d.c.Sync(ctx); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync of a revoked ftDevice: %v", err)
		}
	}

	t.Run("Unsent", func(t *testing.T) {
		d := ct.newDevice(t, "a1", 60, nil)
		d.mustSync(t)
		sent, _ := d.record(t, ids["DR1"], syncproto.OutcomeRefused, true)
		d.mustSync(t)
		u1, _ := d.record(t, ids["DR1"], syncproto.OutcomeDissuaded, true)
		u2, err := d.c.Escalate(ids["DR2"], "联系不上")
		if err != nil {
			t.Fatal(err)
		}
		admin := ct.srv.Admin(t)
		if _, err := admin.RevokeDevice(ctx, d.c.DeviceID(), true); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		d.net.ResetHistory()
		_, err = d.c.Sync(ctx)
		if !errors.Is(err, clientsdk.ErrRevoked) || syncproto.ErrorCode(err) != syncproto.CodeDeviceRevoked {
			t.Fatalf("sync after revoke: %v", err)
		}
		if h := ftPaths(d.net.History()); len(h) != 1 || h[0] != "sync/push 403 device_revoked" {
			t.Fatalf("requests after revoke %v, want the one push that learned it", h)
		}
		checkWiped(t, d, []clientsdk.OpStatus{u1, u2})
		// The ops the server never got are not on it.
		logged := ftOpsInLog(t, ct.srv)
		if len(logged[sent.OpID]) != 1 || len(logged[u1.OpID]) != 0 || len(logged[u2.OpID]) != 0 {
			t.Errorf("log holds sent %d, unsent %d and %d times", len(logged[sent.OpID]), len(logged[u1.OpID]), len(logged[u2.OpID]))
		}
		// Reopened, the device is still wiped and still holds them.
		d.close()
		d.open(t)
		checkWiped(t, d, []clientsdk.OpStatus{u1, u2})
	})

	// RevokedBetweenPushAndPull: the push is acknowledged, then the device
	// is revoked before its pull. The acknowledged op is on the server, not
	// unsent: handing it over would have it entered twice.
	t.Run("RevokedBetweenPushAndPull", func(t *testing.T) {
		d := ct.newDevice(t, "a1", 61, nil)
		d.mustSync(t)
		acked, _ := d.record(t, ids["DR2"], syncproto.OutcomeRefused, true)
		admin := ct.srv.Admin(t)
		var unsent clientsdk.OpStatus
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			resp, err := next()
			if r.Path() == "/v1/sync/push" && err == nil && resp.StatusCode == http.StatusOK {
				// While the answer travels, the person records more and
				// the admin revokes the device.
				var rerr error
				if unsent, rerr = d.c.Escalate(ids["DR2"], "需要民警协助"); rerr != nil {
					t.Errorf("escalate: %v", rerr)
				}
				if _, rerr := admin.RevokeDevice(ctx, d.c.DeviceID(), true); rerr != nil {
					t.Errorf("revoke: %v", rerr)
				}
			}
			return resp, err
		})
		_, err := d.c.Sync(ctx)
		if !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync: %v, want revoked at the pull", err)
		}
		if len(ftOpsInLog(t, ct.srv)[acked.OpID]) != 1 {
			t.Fatal("the acknowledged op is not on the server")
		}
		checkWiped(t, d, []clientsdk.OpStatus{unsent})
	})
}

func ftVisitAttempt() clientsdk.Attempt {
	return clientsdk.Attempt{Method: syncproto.MethodPhone, Reached: false, Outcome: syncproto.OutcomeUnreachable}
}

// TestFaults_RefreshAnswerLost: the server rotates the refresh token but its
// answer never arrives, and the SDK retries the refresh with the token it
// holds. Within the server's grace window (PROTOCOL.md section 3) the retry
// gets a new pair and the sync succeeds. Past it, the retry ends the
// device's session; the SDK then says ErrNotLoggedIn, keeps every unsent
// op, lets the same user sign in again on the same device, and the ops
// arrive once.
func TestFaults_RefreshAnswerLost(t *testing.T) {
	t.Run("RetryInGrace", func(t *testing.T) { testRefreshAnswerLost(t, false) })
	t.Run("RetryAfterGrace", func(t *testing.T) { testRefreshAnswerLost(t, true) })
}

func testRefreshAnswerLost(t *testing.T, late bool) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("RA1", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 70, nil)
	d.mustSync(t)
	deviceID := d.c.DeviceID()
	op, att := d.record(t, ids["RA1"], syncproto.OutcomeDissuaded, true)
	ct.clock.Add(16 * time.Minute)
	lost := false
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/auth/refresh" || lost {
			return next()
		}
		lost = true
		resp, err := d.net.Send(r)
		if err != nil {
			return nil, err
		}
		if _, err := faultnet.ReadAnswer(resp); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("refresh: %d %v", resp.StatusCode, err)
		}
		if late {
			// The link is gone for longer than the grace window.
			ct.clock.Add(app.DefaultRefreshGrace + time.Second)
		}
		return nil, fmt.Errorf("%w: the refresh answer was lost", faultnet.ErrInjected)
	})
	defer d.net.SetHook(nil)
	_, err := d.c.Sync(ctx)
	if !lost {
		t.Fatal("no refresh happened")
	}
	switch {
	case !late:
		if err != nil {
			t.Fatalf("sync retrying a lost refresh answer within the grace window: %v", err)
		}
	case errors.Is(err, clientsdk.ErrNotLoggedIn):
		if _, loggedIn := d.c.User(); loggedIn {
			t.Fatal("User() says logged in after ErrNotLoggedIn")
		}
		if ops := d.c.Ops(); len(ops) != 1 || ops[0].OpID != op.OpID {
			t.Fatalf("ops after the session ended: %+v", ops)
		}
		if _, err := d.c.Login(ctx, "a1", servertest.CityPassword); err != nil {
			t.Fatalf("sign in again with unsent ops: %v", err)
		}
		if d.c.DeviceID() != deviceID {
			t.Fatalf("signing in again changed the device id")
		}
		d.mustSync(t)
	default:
		t.Fatalf("sync retrying a lost refresh answer after the grace window: %v, want ErrNotLoggedIn", err)
	}
	if ops := d.c.Ops(); len(ops) != 0 {
		t.Fatalf("ops left: %+v", ops)
	}
	ftCheckOnceInLog(t, ct.srv, ftOpIDs(op))
	if n := ct.attemptCounts(t)[att]; n != 1 {
		t.Fatalf("attempt on the server %d times", n)
	}
	ftCheckHoldsServerState(t, ct, d)
}
