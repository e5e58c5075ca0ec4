package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// idxEntry is one scope index entry as the file holds it.
type idxEntry struct {
	Scope string
	Seq   uint64
	Kind  byte
	Rec   string // entity byte + id
}

// rawIndex reads every scope index of a running store.
func rawIndex(tb testing.TB, st *store.Store) []idxEntry {
	tb.Helper()
	var out []idxEntry
	err := st.RawDB().View(func(tx *bolt.Tx) error {
		idx := tx.Bucket([]byte("idx"))
		return idx.ForEachBucket(func(scope []byte) error {
			return idx.Bucket(scope).ForEach(func(k, v []byte) error {
				var seq uint64
				for _, c := range k {
					seq = seq<<8 | uint64(c)
				}
				kind, rec := rawIndexValue(tb, v)
				out = append(out, idxEntry{Scope: string(scope), Seq: seq, Kind: kind, Rec: rec})
				return nil
			})
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// compacted is what compaction must leave of entries: the newest entry of
// each record per scope, less the removes at or below horizon.
func compacted(entries []idxEntry, horizon uint64) map[idxEntry]bool {
	newest := map[[2]string]idxEntry{}
	for _, e := range entries {
		k := [2]string{e.Scope, e.Rec}
		if old, ok := newest[k]; !ok || e.Seq > old.Seq {
			newest[k] = e
		}
	}
	out := map[idxEntry]bool{}
	for _, e := range newest {
		if e.Kind == 'r' && e.Seq <= horizon {
			continue
		}
		out[e] = true
	}
	return out
}

// droppedHorizons is what each scope's horizon must be after compacting
// entries at horizon: the highest seq of a remove it dropped (scopes that
// lost none are absent).
func droppedHorizons(entries []idxEntry, horizon uint64) map[string]uint64 {
	kept := compacted(entries, horizon)
	newest := compacted(entries, 0)
	out := map[string]uint64{}
	for e := range newest {
		if !kept[e] {
			out[e.Scope] = max(out[e.Scope], e.Seq)
		}
	}
	return out
}

// checkHorizons checks the horizon of every scope of entries.
func checkHorizons(tb testing.TB, st *store.Store, entries []idxEntry, want map[string]uint64) {
	tb.Helper()
	for _, e := range entries {
		if got := st.HorizonOf(e.Scope); got != want[e.Scope] {
			tb.Fatalf("%s's horizon is %d, want %d (its newest dropped remove)", e.Scope, got, want[e.Scope])
		}
	}
}

// scopeOfDevice names the scope bucket a device pulls.
func scopeOfDevice(d *servertest.Device) string {
	u := d.Login.User
	if u.Role == syncproto.RoleVillage {
		return store.UserScope(u.ID)
	}
	return store.UnitScope(u.Unit)
}

// replica is a device's copy of its scope, kept the way the SDK keeps it.
type replica struct {
	d      *servertest.Device
	cursor string
	state  map[string]string // entity/id -> the put as JSON
}

func newReplica(d *servertest.Device) *replica {
	return &replica{d: d, state: map[string]string{}}
}

func (r *replica) clone() *replica {
	c := &replica{d: r.d, cursor: r.cursor, state: make(map[string]string, len(r.state))}
	for k, v := range r.state {
		c.state[k] = v
	}
	return c
}

// sync pulls small pages until more is false and reports whether the
// server answered reset.
func (r *replica) sync(tb testing.TB) (reset bool) {
	tb.Helper()
	for range 10_000 {
		resp, err := r.d.Pull(context.Background(), syncproto.PullRequest{DeviceID: r.d.ID, Cursor: r.cursor, Limit: 7})
		if err != nil {
			tb.Fatalf("pull: %v", err)
		}
		if resp.Reset {
			reset = true
			r.state = map[string]string{}
		}
		for _, c := range resp.Changes {
			key := c.Entity + "/" + c.ID
			if c.Kind == syncproto.ChangeRemove {
				delete(r.state, key)
				continue
			}
			data, err := json.Marshal(c)
			if err != nil {
				tb.Fatal(err)
			}
			r.state[key] = string(data)
		}
		r.cursor = resp.Cursor
		if !resp.More {
			return reset
		}
	}
	tb.Fatal("pull never ended")
	return false
}

// opMaker makes random ops of the center on a city's warnings: dispatches
// between villages, assignments to every cadre, attempts and reviews, so
// warnings move between scopes and change status often.
type opMaker struct {
	rnd      *mrand.Rand
	warnings []string
	cadres   []string
	clock    func() time.Time
}

func (m *opMaker) op(d *servertest.Device) syncproto.Op {
	w := m.warnings[m.rnd.IntN(len(m.warnings))]
	o := syncproto.Op{ID: uuid.NewString(), ClientSeq: d.NextSeq(), WarningID: w, At: m.clock().UTC()}
	switch m.rnd.IntN(5) {
	case 0:
		villages := []string{servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitVillB1}
		o.Type, o.Body = syncproto.OpDispatched, syncproto.OpBody{Unit: villages[m.rnd.IntN(len(villages))]}
	case 1:
		o.Type, o.Body = syncproto.OpAssigned, syncproto.OpBody{Assignee: m.cadres[m.rnd.IntN(len(m.cadres))]}
	case 2:
		reached := true
		outcome := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeRefused}[m.rnd.IntN(2)]
		o.Type, o.Body = syncproto.OpRecorded, syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: outcome}
	default:
		decision := []string{syncproto.DecisionApprove, syncproto.DecisionReturn}[m.rnd.IntN(2)]
		o.Type, o.Body = syncproto.OpReviewed, syncproto.OpBody{Decision: decision, Comment: "复核"}
	}
	return o
}

// compactCity is the small city with warnings and a device per user.
type compactCity struct {
	srv    *servertest.Server
	clock  *fakeclock.Clock
	center *servertest.Device
	devs   map[string]*servertest.Device
	ops    *opMaker
}

func newCompactCity(t *testing.T, warnings int) *compactCity {
	t.Helper()
	clock := fakeclock.At(time.Now().Add(-60 * 24 * time.Hour).Truncate(time.Second))
	srv := servertest.Start(t, servertest.Options{Now: clock.Now, AccessTTL: 100 * 24 * time.Hour})
	ids := srv.LoadCity(t)
	c := &compactCity{srv: srv, clock: clock, devs: map[string]*servertest.Device{}}
	for _, u := range []string{"center1", "county1", "leadA", "leadB", "a1", "a2x", "a2y", "b1"} {
		c.devs[u] = srv.Login(t, u, servertest.CityPassword)
	}
	c.center = c.devs["center1"]
	var rows []syncproto.FeedWarning
	units := []string{servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitVillB1, servertest.UnitTownA}
	for i := range warnings {
		rows = append(rows, syncproto.FeedWarning{ExternalID: fmt.Sprintf("C%03d", i), Name: "测试", Phone: "13800001234", IDTail: "123X",
			Address: "某村", Unit: units[i%len(units)], FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: clock.Now().Add(-time.Hour)})
	}
	created := srv.Import(t, "center1", rows...)
	c.ops = &opMaker{rnd: mrand.New(mrand.NewPCG(6, 6)), cadres: []string{ids["a1"], ids["a2x"], ids["a2y"], ids["b1"]}, clock: clock.Now}
	for _, id := range created {
		c.ops.warnings = append(c.ops.warnings, id)
	}
	// Map order is random: sort for a repeatable run.
	slices.Sort(c.ops.warnings)
	return c
}

// work pushes n ops of the center one at a time, a minute apart, and
// returns the log's head after the last.
func (c *compactCity) work(t *testing.T, n int) uint64 {
	t.Helper()
	var head uint64
	for range n {
		c.clock.Add(time.Minute)
		resp, err := c.center.Push(context.Background(), syncproto.PushRequest{DeviceID: c.center.ID, Ops: []syncproto.Op{c.ops.op(c.center)}})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		head = resp.ServerSeq
	}
	return head
}

func (c *compactCity) replicas() map[string]*replica {
	out := map[string]*replica{}
	for u, d := range c.devs {
		out[u] = newReplica(d)
	}
	return out
}

func syncAll(t *testing.T, rs map[string]*replica) {
	t.Helper()
	for _, r := range rs {
		r.sync(t)
	}
}

func cloneAll(rs map[string]*replica) map[string]*replica {
	out := map[string]*replica{}
	for u, r := range rs {
		out[u] = r.clone()
	}
	return out
}

func TestCompactIndex(t *testing.T) {
	ctx := context.Background()
	c := newCompactCity(t, 24)
	st := c.srv.Store
	live := c.replicas()
	syncAll(t, live)

	// Phase 1, more than the horizon ago; the "away" devices synced half-way.
	c.work(t, 60)
	syncAll(t, live)
	away := cloneAll(live)
	horizonSeq := c.work(t, 60)

	// Phase 2, recent; the "recent" devices synced half-way through.
	c.clock.Add(40 * 24 * time.Hour)
	c.work(t, 60)
	syncAll(t, live)
	recent := cloneAll(live)
	c.work(t, 60)
	syncAll(t, live) // live devices are at the head

	// What the devices would get without compaction.
	truth := map[string]map[string]string{}
	for u, d := range c.devs {
		r := newReplica(d)
		r.sync(t)
		truth[u] = r.state
	}
	for u, r := range cloneAll(recent) {
		if r.sync(t) {
			t.Fatalf("%s: reset before any compaction", u)
		}
		if !reflect.DeepEqual(r.state, truth[u]) {
			t.Fatalf("%s: an incremental pull differs from a full one before compaction", u)
		}
	}

	before := rawIndex(t, st)
	want := compacted(before, horizonSeq)
	recentRemoves := 0
	for e := range want {
		if e.Kind == 'r' && e.Seq > horizonSeq {
			recentRemoves++
		}
	}
	if recentRemoves == 0 {
		t.Fatal("the test made no remove newer than the horizon")
	}

	defer store.SetCompactChunks(50, 20)()
	rep, err := st.CompactIndex(ctx, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	after := rawIndex(t, st)
	t.Logf("%d entries before, %d after: %+v", len(before), len(after), rep)
	if rep.HorizonSeq != horizonSeq {
		t.Fatalf("horizon seq %d, want %d: the last op received more than 30 days ago", rep.HorizonSeq, horizonSeq)
	}
	scopeHorizons := droppedHorizons(before, horizonSeq)
	checkHorizons(t, st, before, scopeHorizons)
	if rep.ScopesMoved != len(scopeHorizons) {
		t.Fatalf("report says %d scopes' horizons moved, %d lost a tombstone", rep.ScopesMoved, len(scopeHorizons))
	}
	if rep.Superseded == 0 || rep.Tombstones == 0 || rep.Entries != len(before) || rep.Superseded+rep.Tombstones != len(before)-len(after) {
		t.Fatalf("report %+v for %d entries before and %d after", rep, len(before), len(after))
	}
	got := map[idxEntry]bool{}
	perRecord := map[[2]string]int{}
	for _, e := range after {
		got[e] = true
		if perRecord[[2]string{e.Scope, e.Rec}]++; perRecord[[2]string{e.Scope, e.Rec}] > 1 {
			t.Errorf("%s still holds two entries of %q", e.Scope, e.Rec)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after compaction the index holds %d entries, want %d (the newest per record per scope, less removes at or below seq %d)", len(got), len(want), horizonSeq)
	}

	t.Run("RecentCursorsCarryOn", func(t *testing.T) {
		for u, r := range recent {
			if r.sync(t) {
				t.Errorf("%s: reset with a cursor newer than the horizon", u)
			}
			if !reflect.DeepEqual(r.state, truth[u]) {
				t.Errorf("%s: after compaction the device holds %d records, without it %d", u, len(r.state), len(truth[u]))
			}
		}
		for u, r := range live {
			if r.sync(t) || !reflect.DeepEqual(r.state, truth[u]) {
				t.Errorf("%s: a device at the head changed after compaction", u)
			}
		}
		// A first pull in small pages: its cursors stay below the
		// horizon for a while, and it must not reset over and over.
		for u, d := range c.devs {
			r := newReplica(d)
			if r.sync(t) || !reflect.DeepEqual(r.state, truth[u]) {
				t.Errorf("%s: a first pull after compaction differs from one before", u)
			}
		}
	})
	t.Run("OldCursorsResetWhereTombstonesWent", func(t *testing.T) {
		resets := 0
		for u, r := range away {
			scope := scopeOfDevice(c.devs[u])
			cur, perr := syncproto.ParseCursor(r.cursor)
			if perr != nil {
				t.Fatal(perr)
			}
			want := max(cur.Seq, cur.Floor) < scopeHorizons[scope]
			if got := r.sync(t); got != want {
				t.Errorf("%s: reset %v with cursor seq %d, %s's horizon %d", u, got, cur.Seq, scope, scopeHorizons[scope])
			}
			if want {
				resets++
			}
			if !reflect.DeepEqual(r.state, truth[u]) {
				t.Errorf("%s: after the pull the device holds %d records, want %d", u, len(r.state), len(truth[u]))
			}
		}
		if resets == 0 {
			t.Fatal("no away device lost a tombstone it had not read: the test shows nothing")
		}
	})
	t.Run("AgainChangesNothing", func(t *testing.T) {
		rep, err := st.CompactIndex(ctx, 30*24*time.Hour)
		if err != nil || rep.Superseded+rep.Tombstones != 0 || len(rawIndex(t, st)) != len(after) {
			t.Fatalf("second compaction: %+v %v", rep, err)
		}
	})
	t.Run("HorizonNeverGoesBack", func(t *testing.T) {
		rep, err := st.CompactIndex(ctx, 90*24*time.Hour)
		if err != nil || rep.HorizonSeq >= horizonSeq || rep.ScopesMoved != 0 {
			t.Fatalf("compaction with a longer horizon: %+v %v", rep, err)
		}
		checkHorizons(t, st, before, scopeHorizons)
	})
}

// TestCompactIndex_ConcurrentPushes compacts in tiny batches while devices
// push: every acknowledged op is in the log, and every device ends holding
// exactly the warnings of its scope.
func TestCompactIndex_ConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	c := newCompactCity(t, 20)
	st := c.srv.Store
	c.work(t, 100)
	reps := c.replicas()
	syncAll(t, reps)

	defer store.SetCompactChunks(7, 3)()
	pushers := map[string]*opMaker{}
	for i, u := range []string{"center1", "county1", "leadA"} {
		m := *c.ops
		m.rnd = mrand.New(mrand.NewPCG(uint64(i), 9))
		pushers[u] = &m
	}
	var acked sync.Map // op id -> true
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 16)
	for u, m := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := c.devs[u]
			for range 40 {
				ops := []syncproto.Op{m.op(d), m.op(d)}
				resp, err := d.Push(ctx, syncproto.PushRequest{DeviceID: d.ID, Ops: ops})
				if err != nil {
					errs <- err
					return
				}
				for _, r := range resp.Results {
					acked.Store(r.OpID, r.Status)
				}
			}
		}()
	}
	compactions := 0
	var compactErr error
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		for {
			if _, err := st.CompactIndex(ctx, 30*24*time.Hour); err != nil {
				compactErr = err
				return
			}
			compactions++
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(done)
	cwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if compactErr != nil || compactions == 0 {
		t.Fatalf("%d compactions, %v", compactions, compactErr)
	}

	// Every acknowledged op is in the log, once.
	inLog := map[string]int{}
	err := st.EachLogEntry(func(_ uint64, e *store.LogEntry) error {
		if e.Op != nil {
			inLog[e.Op.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if inLog[k.(string)] != 1 {
			t.Errorf("acknowledged op %s is %d times in the log", k, inLog[k.(string)])
		}
		return true
	})
	if n != 3*40*2 {
		t.Fatalf("%d ops acknowledged", n)
	}

	// Each device, carrying on from its cursor, ends with exactly the
	// warnings its scope holds now, at their current versions.
	warnings := map[string]*syncproto.Warning{}
	err = st.RawDB().View(func(tx *bolt.Tx) error {
		return rawStates(tx, func(_, v []byte) error {
			var w syncproto.Warning
			rawState(t, v, &w)
			warnings[w.ID] = &w
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for u, r := range reps {
		r.sync(t)
		user := c.devs[u].Login.User
		want := map[string]uint64{}
		for id, w := range warnings {
			in := w.Assignee == user.ID && w.ArchivedAt == nil
			if user.Role != syncproto.RoleVillage {
				in = strings.HasPrefix(w.Unit, user.Unit)
			}
			if in {
				want[id] = w.Version
			}
		}
		got := map[string]uint64{}
		for key, data := range r.state {
			if id, ok := strings.CutPrefix(key, syncproto.EntityWarning+"/"); ok {
				var ch struct {
					Version uint64 `json:"version"`
				}
				if err := json.Unmarshal([]byte(data), &ch); err != nil {
					t.Fatal(err)
				}
				got[id] = ch.Version
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds %v, its scope %v", u, got, want)
		}
	}
}

// TestCompactIndex_LatestEntries: after compaction each scope's latest
// entries are exactly its remaining index entries (a record whose remove
// was dropped leaves nothing behind), every device still gets each record
// once, and the store's check passes.
func TestCompactIndex_LatestEntries(t *testing.T) {
	ctx := context.Background()
	c := newCompactCity(t, 24)
	st := c.srv.Store
	c.work(t, 150)
	c.clock.Add(40 * 24 * time.Hour)
	c.work(t, 20)
	if got, want := rawLatest(t, st), newestEntries(rawIndex(t, st)); !reflect.DeepEqual(got, want) {
		t.Fatalf("before compaction the latest entries are not the newest of each record")
	}

	defer store.SetCompactChunks(11, 4)()
	rep, err := st.CompactIndex(ctx, 30*24*time.Hour)
	if err != nil || rep.Tombstones == 0 || rep.Superseded == 0 {
		t.Fatalf("compaction: %+v %v", rep, err)
	}
	after := rawIndex(t, st)
	want := map[[2]string]uint64{}
	for _, e := range after {
		want[[2]string{e.Scope, e.Rec}] = e.Seq
	}
	if len(want) != len(after) {
		t.Fatalf("after compaction %d entries hold %d records", len(after), len(want))
	}
	if got := rawLatest(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("after compaction %d latest entries for %d index entries", len(got), len(after))
	}
	for u, d := range c.devs {
		truth := pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
		got := pullPages(t, d, "", syncproto.PullRequest{Limit: 2}, nil)
		if twice := got.sentTwice(); len(twice) > 0 || !reflect.DeepEqual(got.state, truth.state) {
			t.Errorf("%s: after compaction a first sync in pages of two sent %v more than once, and holds %d records of %d", u, twice, len(got.state), len(truth.state))
		}
	}
	if err := c.srv.Close(); err != nil {
		t.Fatal(err)
	}
	check, err := storefile.Check(c.srv.Dir)
	if err != nil || len(check.Problems) > 0 {
		t.Fatalf("check: %+v %v", check, err)
	}
}
