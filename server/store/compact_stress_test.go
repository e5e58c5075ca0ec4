package store_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/soak"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The stress run in fake time. Each push moves the clock by stressStep, and
// compaction drops the tombstones older than stressHorizon: over a run of
// an hour most removes fall below the horizon while devices are
// still pulling, and a device away for two horizons must be reset if its
// scope lost a tombstone it had not read, and only then.
const (
	stressHorizon   = 5 * time.Minute
	stressStep      = 15 * time.Second
	stressRetention = 3 * time.Minute // a closed warning leaves its cadre's phone
	stressWarnings  = 30
	stressPushes    = 80 // per pusher, two ops each
	// stressLag is how far the clock may run ahead of a device or the
	// compactor: at least the longest pause between a device's pulls.
	stressLag = time.Minute
)

// TestCompactIndex_Stress runs pushes that move warnings between scopes,
// devices that pull in small pages (some going away for longer than the
// horizon, one starting over from nothing), a retention sweep, and index
// compaction with a short horizon, all at once. Every device must end
// holding exactly what its scope holds, every pull must reset exactly when
// its cursor is below its scope's horizon, and compaction must really have
// dropped tombstones and moved a scope's horizon past a device that was
// away.
//
// The ops each pusher makes and each device's page sizes follow the seed;
// how the goroutines interleave is the scheduler's.
func TestCompactIndex_Stress(t *testing.T) {
	for seed := range uint64(soak.Scale(4)) {
		seed++
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			runCompactStress(t, seed)
		})
	}
}

func runCompactStress(t *testing.T, seed uint64) {
	ctx := context.Background()
	c := newStressCity(t)
	defer store.SetCompactChunks(7, 3)()
	start := c.clock.Now()

	replicas := []*stressReplica{
		c.replica("a1", seed, 30*time.Second),
		c.replica("a2x", seed, 45*time.Second, awayAt(4*time.Minute, 20*time.Minute)),
		c.replica("a2y", seed, 45*time.Second),
		c.replica("b1", seed, 30*time.Second),
		c.replica("leadA", seed, 40*time.Second, awayAt(6*time.Minute, 35*time.Minute)),
		c.replica("county1", seed, 50*time.Second, restartAt(12*time.Minute)),
	}
	for _, r := range replicas {
		if _, err := r.pull(c); err != nil {
			t.Fatalf("%s: first pull: %v", r.name, err)
		}
	}

	// A participant that fails stops the clock, so that nothing waits
	// for it.
	var pullers, background sync.WaitGroup
	for _, r := range replicas {
		c.clock.Join(r.name)
		pullers.Go(func() {
			if err := r.run(c, start); err != nil {
				t.Errorf("%s: %v", r.name, err)
				c.clock.Stop()
			}
		})
	}
	var compaction stressCompaction
	c.clock.Join("compaction")
	background.Go(func() {
		if err := compaction.run(ctx, c); err != nil {
			t.Errorf("compaction: %v", err)
			c.clock.Stop()
		}
	})
	var applied, rejected int
	movesApplied := map[string]int{} // applied ops that move a warning between scopes, by type
	var mu sync.Mutex
	var pushers sync.WaitGroup
	for i, name := range []string{"center1", "county1", "leadA"} {
		p := c.pusher(name, seed, uint64(i))
		pushers.Go(func() {
			for range stressPushes {
				c.clock.Add(stressStep)
				ops := []syncproto.Op{p.op(c), p.op(c)}
				resp, err := c.st.Push(ctx, p.actor, ops)
				if err != nil {
					t.Errorf("%s: push: %v", name, err)
					return
				}
				mu.Lock()
				for _, r := range resp.Results {
					if r.Status == syncproto.StatusApplied {
						applied++
						for _, o := range ops {
							if o.ID == r.OpID && (o.Type == syncproto.OpDispatched || o.Type == syncproto.OpAssigned) {
								movesApplied[o.Type]++
							}
						}
					} else {
						rejected++
					}
				}
				mu.Unlock()
			}
		})
	}
	pushers.Wait()
	c.clock.Stop()
	pullers.Wait()
	background.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Pushes have stopped: one more compaction, then each device pulls to
	// the end and must hold exactly its scope as the warnings stand now.
	if err := compaction.once(ctx, c); err != nil {
		t.Fatalf("compaction: %v", err)
	}
	resets := 0
	for _, r := range replicas {
		if _, err := r.pull(c); err != nil {
			t.Fatalf("%s: final pull: %v", r.name, err)
		}
		want := c.holds(t, r.user)
		got := maps.Clone(r.copy)
		for k := range got {
			if strings.HasPrefix(k, syncproto.EntityUnit+"/") {
				got[k] = 0 // a unit's version is its index entry's seq
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s holds %d records, its scope %d:\n%s", r.name, len(got), len(want), diffRecords(got, want))
		}
		resets += r.resets
	}
	horizons := map[string]uint64{}
	for _, r := range replicas {
		horizons[r.scope] = c.st.HorizonOf(r.scope)
	}
	awayResets := countOf(replicas, func(r *stressReplica) int { return r.awayResets })
	t.Logf("seed %d: %d ops applied (moves between scopes %v), %d rejected, log at %d; %d compactions dropped %d superseded entries and %d tombstones, %d warnings archived; horizons %v; %d resets, %d away resets, %d away and carried on, %d pages under a floor",
		seed, applied, movesApplied, rejected, lastSeq(t, c.st), compaction.passes, compaction.superseded, compaction.tombstones, compaction.archived,
		horizons, resets, awayResets, countOf(replicas, func(r *stressReplica) int { return r.awayCarriedOn }), countOf(replicas, func(r *stressReplica) int { return r.floorPages }))

	// The run must have done what it is for, or it proves nothing.
	if compaction.tombstones == 0 {
		t.Error("no tombstone was dropped")
	}
	if slices.Max(slices.Collect(maps.Values(horizons))) == 0 {
		t.Error("no scope's horizon moved")
	}
	if compaction.archived == 0 {
		t.Error("no closed warning was archived off a cadre's phone")
	}
	// About half the ops are refused (a review of a warning awaiting none,
	// an assignment to a cadre outside the warning's village), and the
	// share moves with the interleaving: what the run needs is warnings
	// moved between scopes many times. Each kind of move is about 144 of
	// the 480 ops made, and 51 to 102 of them were applied in 20 seeds.
	for _, typ := range []string{syncproto.OpDispatched, syncproto.OpAssigned} {
		if movesApplied[typ] < 30 {
			t.Errorf("only %d %s ops applied (%d ops applied in all, %d refused)", movesApplied[typ], typ, applied, rejected)
		}
	}
	if awayResets == 0 {
		t.Error("no device came back to a scope that lost a tombstone while it was away")
	}
	for _, r := range replicas {
		if r.awayResets+r.awayCarriedOn < len(r.away) {
			t.Errorf("%s came back %d times, want %d", r.name, r.awayResets+r.awayCarriedOn, len(r.away))
		}
		if r.restart > 0 && r.restarts != 1 {
			t.Errorf("%s started over %d times, want 1", r.name, r.restarts)
		}
	}
	if countOf(replicas, func(r *stressReplica) int { return r.floorPages }) == 0 {
		t.Error("no page of a pull from nothing carried a floor above its seq")
	}

	if err := c.st.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := storefile.Check(c.dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// stressClock is a fake clock that only pushes move. Devices and the
// compactor wait on it, so what they do follows fake time, not the speed
// of the machine; and the clock waits for them: it never runs more than lag
// ahead of a participant still busy with an earlier moment, so pushes
// cannot finish the run before the others have taken part.
type stressClock struct {
	mu      sync.Mutex
	changed sync.Cond // the time, a mark or stopped changed
	t       time.Time
	lag     time.Duration
	marks   map[string]time.Time // each participant: done with all before this
	stopped bool
}

func newStressClock(t time.Time, lag time.Duration) *stressClock {
	c := &stressClock{t: t, lag: lag, marks: map[string]time.Time{}}
	c.changed.L = &c.mu
	return c
}

func (c *stressClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Join makes name a participant the clock waits for.
func (c *stressClock) Join(name string) {
	c.mu.Lock()
	c.marks[name] = c.t
	c.mu.Unlock()
}

// Leave stops waiting for name.
func (c *stressClock) Leave(name string) {
	c.mu.Lock()
	delete(c.marks, name)
	c.mu.Unlock()
	c.changed.Broadcast()
}

// Add moves the clock by d, once every participant is within lag of it.
func (c *stressClock) Add(d time.Duration) {
	c.mu.Lock()
	for !c.stopped && c.behind(c.t.Add(d)) {
		c.changed.Wait()
	}
	c.t = c.t.Add(d)
	c.mu.Unlock()
	c.changed.Broadcast()
}

func (c *stressClock) behind(t time.Time) bool {
	for _, m := range c.marks {
		if t.Sub(m) > c.lag {
			return true
		}
	}
	return false
}

// Stop ends every wait, now and later.
func (c *stressClock) Stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.changed.Broadcast()
}

// WaitFor tells the clock that participant name is done with the present,
// and blocks until the clock has moved d (at most lag). It reports false
// once the clock is stopped.
func (c *stressClock) WaitFor(name string, d time.Duration) bool {
	if d > c.lag {
		panic("a participant waiting longer than the lag would hold the clock for ever; use Away")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.marks[name] = c.t
	c.changed.Broadcast()
	return c.waitUntil(c.t.Add(d))
}

// Away lets the clock run without name for d, then rejoins it.
func (c *stressClock) Away(name string, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.marks, name)
	c.changed.Broadcast()
	ok := c.waitUntil(c.t.Add(d))
	c.marks[name] = c.t
	return ok
}

func (c *stressClock) waitUntil(t time.Time) bool {
	for c.t.Before(t) && !c.stopped {
		c.changed.Wait()
	}
	return !c.stopped
}

// stressCity is the small test city in a store opened directly on a
// stressClock, a device per user, and its warnings.
type stressCity struct {
	st       *store.Store
	dir      string
	clock    *stressClock
	users    map[string]*store.User     // by username
	actors   map[string]syncproto.Actor // each user on its device
	warnings []string                   // in feed order
	units    []string
}

func newStressCity(t *testing.T) *stressCity {
	t.Helper()
	ctx := context.Background()
	c := &stressCity{dir: t.TempDir(), clock: newStressClock(fixtureStart, stressLag), users: map[string]*store.User{}, actors: map[string]syncproto.Actor{}}
	st, err := store.Open(c.dir, store.Options{Create: true, NoSync: true, Now: c.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.st = st
	t.Cleanup(func() { st.Close() })
	city := servertest.City()
	users := servertest.LoadStore(t, st, city)
	for _, u := range city.Units {
		c.units = append(c.units, u.Code)
	}
	for i, in := range city.Users {
		u := users[in.Username]
		device := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		if _, err := st.Login(ctx, &u, store.SignIn{DeviceID: device, Name: "stress " + u.Username, Platform: "test", RefreshHash: [32]byte{byte(i + 1)}, RefreshTTL: 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		c.users[u.Username] = &u
		c.actors[u.Username] = u.Actor(device)
	}
	var rows []store.FeedRow
	feedUnits := []string{servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitVillB1, servertest.UnitTownA}
	for i := range stressWarnings {
		rows = append(rows, store.FeedRow{Num: i + 1, Warning: syncproto.FeedWarning{ExternalID: fmt.Sprintf("S%03d", i), Name: "测试", Phone: "13800001234",
			IDTail: "123X", Address: "某村", Unit: feedUnits[i%len(feedUnits)], FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: c.clock.Now().Add(-time.Hour)}})
	}
	resp, err := st.ImportFeed(ctx, c.actors["center1"], rows)
	if err != nil || len(resp.Created) != len(rows) {
		t.Fatalf("import: %+v %v", resp, err)
	}
	// By external id, so a seed picks the same warnings in every run.
	slices.SortFunc(resp.Created, func(a, b syncproto.FeedCreated) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	for _, cr := range resp.Created {
		c.warnings = append(c.warnings, cr.ID)
	}
	return c
}

// holds is what user's scope holds now, computed from the warnings' states
// and the directory, not from any index: entity/id -> version (0 for a
// unit, whose version is an index seq).
func (c *stressCity) holds(t *testing.T, user *store.User) map[string]uint64 {
	t.Helper()
	want := map[string]uint64{}
	village := user.Role == syncproto.RoleVillage
	for _, id := range c.warnings {
		w, err := c.st.Warning(id)
		if err != nil || w == nil {
			t.Fatalf("warning %s: %v", id, err)
		}
		in := syncproto.InScope(user.Unit, w.Unit)
		if village {
			in = w.Assignee == user.ID && w.ArchivedAt == nil
		}
		if in {
			want[syncproto.EntityWarning+"/"+id] = w.Version
		}
	}
	if village {
		return want
	}
	for _, code := range c.units {
		if syncproto.InScope(user.Unit, code) {
			want[syncproto.EntityUnit+"/"+code] = 0
		}
	}
	for _, u := range c.users {
		if u.Role == syncproto.RoleVillage && syncproto.InScope(user.Unit, u.Unit) {
			now, err := c.st.User(u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if now == nil {
				t.Fatalf("user %s is gone", u.Username)
			}
			want[syncproto.EntityUser+"/"+u.ID] = now.Version
		}
	}
	return want
}

// stressPusher makes a manager's ops: dispatches in and out of villages,
// reassignments between cadres, attempts that resolve, approvals that
// close (and retention then archives) and returns that reopen. Each moves
// warnings into and out of scopes, so removes are written all the time.
type stressPusher struct {
	actor syncproto.Actor
	ids   *mrand.ChaCha8 // op and attempt ids
	rnd   *mrand.Rand
	seq   uint64
}

func (c *stressCity) pusher(username string, seed, n uint64) *stressPusher {
	var key [32]byte
	copy(key[:], fmt.Sprintf("pusher %d %d", seed, n))
	src := mrand.NewChaCha8(key)
	return &stressPusher{actor: c.actors[username], ids: src, rnd: mrand.New(src)}
}

func (p *stressPusher) uuid() string {
	return uuid.Must(uuid.NewRandomFromReader(p.ids)).String()
}

func (p *stressPusher) op(c *stressCity) syncproto.Op {
	p.seq++
	o := syncproto.Op{ID: p.uuid(), ClientSeq: p.seq, WarningID: c.warnings[p.rnd.IntN(len(c.warnings))], At: c.clock.Now().UTC()}
	cadres := []string{"a1", "a2x", "a2y", "b1"}
	switch n := p.rnd.IntN(10); {
	case n < 3:
		units := []string{servertest.UnitTownA, servertest.UnitTownB, servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitVillB1}
		o.Type, o.Body = syncproto.OpDispatched, syncproto.OpBody{Unit: units[p.rnd.IntN(len(units))]}
	case n < 6:
		o.Type, o.Body = syncproto.OpAssigned, syncproto.OpBody{Assignee: c.users[cadres[p.rnd.IntN(len(cadres))]].ID}
	case n < 8:
		reached := true
		outcome := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeRefused}[p.rnd.IntN(2)]
		o.Type, o.Body = syncproto.OpRecorded, syncproto.OpBody{AttemptID: p.uuid(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: outcome}
	case n < 9:
		o.Type, o.Body = syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionApprove}
	default:
		o.Type, o.Body = syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "重办"}
	}
	return o
}

// stressReplica is a device's copy of its scope, kept as the SDK keeps it:
// it applies puts and removes, and on a reset drops its copy and starts
// again from the reset's pages.
type stressReplica struct {
	name  string
	user  *store.User
	scope string // the scope bucket it pulls
	actor syncproto.Actor
	rnd   *mrand.Rand // page sizes
	every time.Duration
	// away are the times (from the start) at which it goes away for two
	// horizons; restart the time at which it starts over from an empty
	// cursor (0: never).
	away    []time.Duration
	restart time.Duration

	cursor string
	copy   map[string]uint64 // entity/id -> version

	// awayResets counts the returns from away that reset (its scope lost
	// a tombstone it had not read), awayCarriedOn those that did not.
	resets, awayResets, awayCarriedOn, restarts, floorPages int
}

type replicaOption func(*stressReplica)

func awayAt(at ...time.Duration) replicaOption {
	return func(r *stressReplica) { r.away = at }
}

func restartAt(at time.Duration) replicaOption {
	return func(r *stressReplica) { r.restart = at }
}

func (c *stressCity) replica(username string, seed uint64, every time.Duration, opts ...replicaOption) *stressReplica {
	r := &stressReplica{name: username, user: c.users[username], scope: store.ScopeOf(c.users[username]), actor: c.actors[username], every: every,
		rnd: mrand.New(mrand.NewPCG(seed, nameHash(username))), copy: map[string]uint64{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// run pulls every r.every of fake time until the clock stops, going away
// and starting over when its schedule says.
func (r *stressReplica) run(c *stressCity, start time.Time) error {
	away := r.away
	defer c.clock.Leave(r.name)
	for c.clock.WaitFor(r.name, r.every) {
		since := c.clock.Now().Sub(start)
		if len(away) > 0 && since >= away[0] {
			away = away[1:]
			if err := r.goAway(c); err != nil {
				return err
			}
			continue
		}
		if r.restart > 0 && r.restarts == 0 && since >= r.restart {
			r.restarts++
			r.cursor = ""
			clear(r.copy)
		}
		if _, err := r.pull(c); err != nil {
			return err
		}
	}
	return nil
}

// goAway stays away for two horizons, and then for up to two more until a
// compaction has moved its scope's horizon past its cursor. Its next pull
// must be a reset exactly if it did: a scope that lost no tombstone the
// device had not read carries on, however long it was away.
func (r *stressReplica) goAway(c *stressCity) error {
	cur, perr := syncproto.ParseCursor(r.cursor)
	if perr != nil {
		return perr
	}
	pos := max(cur.Seq, cur.Floor)
	if !c.clock.Away(r.name, 2*stressHorizon) {
		return nil
	}
	// The wait is bounded in fake time, not in steps: a step waited for
	// may pass as much as the clock's lag when the machine is busy, and
	// forty such would leave no time for the device's next away.
	for until := c.clock.Now().Add(2 * stressHorizon); c.st.HorizonOf(r.scope) <= pos && c.clock.Now().Before(until); {
		if !c.clock.WaitFor(r.name, stressStep) {
			return nil
		}
	}
	passed := c.st.HorizonOf(r.scope) > pos
	reset, err := r.pull(c)
	if err != nil {
		return err
	}
	switch {
	case passed && !reset:
		return fmt.Errorf("back after %v away, its cursor at %d below its scope's horizon, and not reset", 2*stressHorizon, pos)
	case reset:
		r.awayResets++
	default:
		r.awayCarriedOn++
	}
	return nil
}

// pull pulls pages of 5 to 7 records until the scope's end and reports
// whether any page was a reset. Each page must reset exactly when its
// cursor is below the horizon: the horizon only grows, so one read before
// and one after the pull bound the one it saw.
func (r *stressReplica) pull(c *stressCity) (reset bool, err error) {
	for range 10_000 {
		var pos uint64
		if r.cursor != "" {
			cur, perr := syncproto.ParseCursor(r.cursor)
			if perr != nil {
				return reset, perr
			}
			pos = max(cur.Seq, cur.Floor)
		}
		before := c.st.HorizonOf(r.scope)
		resp, err := c.st.Pull(context.Background(), r.actor, store.PullPage{Cursor: r.cursor, Limit: 5 + r.rnd.IntN(3)})
		if err != nil {
			return reset, fmt.Errorf("pull: %w", err)
		}
		after := c.st.HorizonOf(r.scope)
		switch {
		case resp.Reset && (r.cursor == "" || pos >= after):
			return reset, fmt.Errorf("reset from a cursor at %d, not below the horizon (at most %d)", pos, after)
		case !resp.Reset && r.cursor != "" && pos < before:
			return reset, fmt.Errorf("no reset from a cursor at %d, below the horizon %d: it may have missed dropped removes", pos, before)
		}
		if resp.Reset {
			reset = true
			r.resets++
			clear(r.copy)
		}
		for _, ch := range resp.Changes {
			key := ch.Entity + "/" + ch.ID
			if ch.Kind == syncproto.ChangeRemove {
				delete(r.copy, key)
				continue
			}
			// A record's state only moves forward; a unit's version is
			// its index entry's seq, which compaction may change.
			if old, ok := r.copy[key]; ok && ch.Version < old && ch.Entity != syncproto.EntityUnit {
				return reset, fmt.Errorf("%s went back from version %d to %d", key, old, ch.Version)
			}
			r.copy[key] = ch.Version
		}
		r.cursor = resp.Cursor
		if cur, _ := syncproto.ParseCursor(resp.Cursor); cur.Floor > cur.Seq {
			r.floorPages++
		}
		if !resp.More {
			return reset, nil
		}
	}
	return reset, fmt.Errorf("pull never ended")
}

// stressCompaction sweeps retention and compacts the indexes after each
// step of fake time, as the server's loops do after each day.
type stressCompaction struct {
	passes, superseded, tombstones, archived int
}

func (p *stressCompaction) run(ctx context.Context, c *stressCity) error {
	defer c.clock.Leave("compaction")
	for c.clock.WaitFor("compaction", stressStep) {
		if err := p.once(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (p *stressCompaction) once(ctx context.Context, c *stressCity) error {
	archived, _, err := c.st.Sweep(ctx, stressRetention, store.DefaultRedactAfter)
	if err != nil {
		return err
	}
	rep, err := c.st.CompactIndex(ctx, stressHorizon)
	if err != nil {
		return err
	}
	p.passes++
	p.archived += archived
	p.superseded += rep.Superseded
	p.tombstones += rep.Tombstones
	return nil
}

func nameHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func countOf(rs []*stressReplica, f func(*stressReplica) int) int {
	n := 0
	for _, r := range rs {
		n += f(r)
	}
	return n
}

// diffRecords lists what got and want disagree on.
func diffRecords(got, want map[string]uint64) string {
	var lines []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s (version %d) is out of scope", k, v))
		} else if w != v {
			lines = append(lines, fmt.Sprintf("  %s at version %d, now %d", k, v, w))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s (version %d) is missing", k, w))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
