package store_test

import (
	"context"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestCompactIndex_HorizonPerScope: compaction resets only the devices of
// scopes that lost a tombstone they had not read. a1's and b1's phones go
// away for 40 days, far past the 30-day horizon. A warning left a1's scope
// while it was away, and compaction drops that remove: a1's phone resets.
// Nothing left b1's scope: b1's phone carries on from its cursor, although
// that cursor is below the time horizon, and gets exactly the change it
// missed.
func TestCompactIndex_HorizonPerScope(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(time.Now().Add(-60 * 24 * time.Hour).Truncate(time.Second))
	srv := servertest.Start(t, servertest.Options{Now: clock.Now, AccessTTL: 100 * 24 * time.Hour})
	st := srv.Store
	ids := srv.LoadCity(t)
	center := srv.Login(t, "center1", servertest.CityPassword)
	rows := []syncproto.FeedWarning{}
	for _, ext := range []string{"A", "A2", "B"} {
		unit := servertest.UnitVillA1
		if ext == "B" {
			unit = servertest.UnitVillB1
		}
		rows = append(rows, syncproto.FeedWarning{ExternalID: "S" + ext, Name: "测试", Phone: "13800001234", IDTail: "123X",
			Address: "某村", Unit: unit, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: clock.Now().Add(-time.Hour)})
	}
	created := srv.Import(t, "center1", rows...)
	wA, wA2, wB := created["SA"], created["SA2"], created["SB"]
	push := func(o syncproto.Op) uint64 {
		t.Helper()
		clock.Add(time.Minute)
		o.ID, o.ClientSeq, o.At = uuid.NewString(), center.NextSeq(), clock.Now().UTC()
		resp, err := center.Push(ctx, syncproto.PushRequest{DeviceID: center.ID, Ops: []syncproto.Op{o}})
		if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("push %s: %+v %v", o.Type, resp, err)
		}
		return resp.ServerSeq
	}
	assign := func(w, user string) uint64 {
		return push(syncproto.Op{Type: syncproto.OpAssigned, WarningID: w, Body: syncproto.OpBody{Assignee: ids[user]}})
	}
	record := func(w string) uint64 {
		reached := true
		return push(syncproto.Op{Type: syncproto.OpRecorded, WarningID: w, Body: syncproto.OpBody{AttemptID: uuid.NewString(),
			Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeDissuaded}})
	}

	assign(wA, "a1")
	assign(wA2, "a1")
	assign(wB, "b1")
	devs := map[string]*servertest.Device{}
	away := map[string]*replica{}
	for _, u := range []string{"a1", "b1"} {
		devs[u] = srv.Login(t, u, servertest.CityPassword)
		away[u] = newReplica(devs[u])
		away[u].sync(t)
	}
	// While they are away: wA leaves a1's scope (a remove there), more
	// work follows; then 40 days later wA2 and wB change.
	removedAt := assign(wA, "a2x")
	record(wA)
	timeHorizon := record(wA2)
	clock.Add(40 * 24 * time.Hour)
	record(wA2)
	record(wB)

	rep, err := st.CompactIndex(ctx, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	scopeA, scopeB := store.UserScope(ids["a1"]), store.UserScope(ids["b1"])
	if rep.HorizonSeq != timeHorizon || rep.Tombstones == 0 {
		t.Fatalf("report %+v, want horizon seq %d and the remove at %d dropped", rep, timeHorizon, removedAt)
	}
	if got := st.HorizonOf(scopeA); got != removedAt {
		t.Fatalf("a1's scope horizon %d, want %d: the seq of the remove dropped from it", got, removedAt)
	}
	if got := st.HorizonOf(scopeB); got != 0 {
		t.Fatalf("b1's scope lost no tombstone, yet its horizon is %d", got)
	}

	truth := map[string]map[string]string{}
	for u, d := range devs {
		r := newReplica(d)
		r.sync(t)
		truth[u] = r.state
	}
	if _, ok := truth["a1"][syncproto.EntityWarning+"/"+wA]; ok || len(truth["a1"]) == 0 || len(truth["b1"]) == 0 {
		t.Fatalf("the scopes now: a1 %v, b1 %v", truth["a1"], truth["b1"])
	}

	b1 := away["b1"]
	cur, perr := syncproto.ParseCursor(b1.cursor)
	if perr != nil {
		t.Fatal(perr)
	}
	if max(cur.Seq, cur.Floor) >= rep.HorizonSeq {
		t.Fatalf("b1's cursor at %d is not below the time horizon %d: the test shows nothing", cur.Seq, rep.HorizonSeq)
	}
	if b1.sync(t) {
		t.Fatal("b1's phone reset, though its scope lost no tombstone while it was away")
	}
	if !reflect.DeepEqual(b1.state, truth["b1"]) || !strings.Contains(b1.state[syncproto.EntityWarning+"/"+wB], `"attempts":[{`) {
		t.Fatalf("b1's phone carried on to %v, its scope holds %v", b1.state, truth["b1"])
	}
	a1 := away["a1"]
	if _, ok := a1.state[syncproto.EntityWarning+"/"+wA]; !ok {
		t.Fatal("a1's phone did not hold wA before it went away")
	}
	if !a1.sync(t) {
		t.Fatal("a1's phone carried on below a remove dropped from its scope: it would keep wA")
	}
	if !reflect.DeepEqual(a1.state, truth["a1"]) {
		t.Fatalf("after its reset a1's phone holds %v, its scope %v", a1.state, truth["a1"])
	}

	// A store a schema-2 fieldsyncd compacted has one global horizon and
	// no horizon per scope: removes of any scope at or below it may be
	// gone, so a cursor of any scope below it resets, one at it carries on.
	legacy := lastSeq(t, st)
	below, at := newReplica(devs["b1"]), newReplica(devs["b1"])
	below.sync(t)
	record(wB)
	at.sync(t)
	record(wB)
	setLegacyHorizon(t, st, legacy+1)
	if got := st.HorizonOf(scopeB); got != legacy+1 {
		t.Fatalf("b1's scope horizon %d under a global horizon of %d", got, legacy+1)
	}
	if got := st.HorizonOf(scopeA); got != legacy+1 {
		t.Fatalf("a1's scope horizon %d under a global horizon of %d", got, legacy+1)
	}
	if !below.sync(t) {
		t.Fatal("a cursor below the global horizon of an older compaction carried on")
	}
	if at.sync(t) {
		t.Fatal("a cursor at the global horizon of an older compaction reset")
	}
	if !reflect.DeepEqual(below.state, at.state) || len(at.state) == 0 {
		t.Fatalf("after the reset %v, carried on %v", below.state, at.state)
	}
	// This code leaves the global horizon as it found it.
	clock.Add(40 * 24 * time.Hour)
	if _, err := st.CompactIndex(ctx, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := legacyHorizon(t, st); got != legacy+1 {
		t.Fatalf("compaction moved the global horizon of an older compaction to %d", got)
	}
}

// setLegacyHorizon writes meta tombstone_horizon, as a compaction by a
// schema-2 fieldsyncd did.
func setLegacyHorizon(tb testing.TB, st *store.Store, seq uint64) {
	tb.Helper()
	err := st.RawDB().Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("tombstone_horizon"), binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func legacyHorizon(tb testing.TB, st *store.Store) (seq uint64) {
	tb.Helper()
	err := st.RawDB().View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("tombstone_horizon")); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return seq
}
