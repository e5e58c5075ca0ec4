package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	mrand "math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// villageProgress is the meta key of the schema 10 upgrade's progress.
var villageProgress = []byte("migrate_village_scopes_next")

// rawHorizons reads bucket horizons of a stopped store.
func rawHorizons(tb testing.TB, dir string) map[string]uint64 {
	tb.Helper()
	out := map[string]uint64{}
	rawView(tb, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("horizons")).ForEach(func(k, v []byte) error {
			out[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return out
}

// rawEdit changes a stopped store's file in one transaction.
func rawEdit(tb testing.TB, dir string, edit func(tx *bolt.Tx) error) {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.DBFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(edit)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// TestMigrate_DropVillageScopes: the schema 10 upgrade, one step per start
// (each start stopped, as by a crash, after its step), deletes the village
// units' scope indexes, every latest entry naming one (a stale one a
// compaction left too) and their horizons, and leaves every other scope's
// entries, latest entries and horizons as they were; the check is clean,
// and every user's pull from nothing then brings what their scope holds.
func TestMigrate_DropVillageScopes(t *testing.T) {
	dir, _ := copyV3(t)
	stop := store.StopMigrationToAfter(10, 0)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) || rawSchema(t, dir) != 9 {
		t.Fatalf("open up to schema 9: %v, schema %d", err, rawSchema(t, dir))
	}
	// A horizon of a village and of a township, as compactions leave, and
	// a warning's latest entry in a village scope whose index no longer
	// holds it (a compaction stopped before forgetGone).
	const village, township = "unit/" + servertest.UnitVillB1, "unit/" + servertest.UnitTownB
	var stale string
	rawEdit(t, dir, func(tx *bolt.Tx) error {
		h := tx.Bucket([]byte("horizons"))
		if err := h.Put([]byte(village), binary.BigEndian.AppendUint64(nil, 3)); err != nil {
			return err
		}
		if err := h.Put([]byte(township), binary.BigEndian.AppendUint64(nil, 2)); err != nil {
			return err
		}
		return rawSubRecords(tx, 'l', func(id, _, v []byte) error {
			if stale == "" && !bytes.Contains(v, []byte(village)) {
				stale = string(id)
			}
			return nil
		})
	})
	rawEdit(t, dir, func(tx *bolt.Tx) error {
		b, k := rawLatestPlace(tx, []byte("w"+stale))
		v := append(bytes.Clone(b.Get(k)), encodeLatest([]latestOf{{scope: village, seq: 1}})...)
		return b.Put(k, v)
	})

	entries, latest, horizons := rawIndexAt(t, dir), rawLatestAt(t, dir), rawHorizons(t, dir)
	want := func(e idxEntry) bool { return !villageScope(e.Scope) }
	var wantEntries []idxEntry
	villages := 0
	for _, e := range entries {
		if want(e) {
			wantEntries = append(wantEntries, e)
		} else {
			villages++
		}
	}
	wantLatest := maps.Clone(latest)
	maps.DeleteFunc(wantLatest, func(k [2]string, _ uint64) bool { return villageScope(k[0]) })
	wantHorizons := maps.Clone(horizons)
	delete(wantHorizons, village)
	if villages < 10 || len(wantLatest) == len(latest) || len(wantEntries) == 0 || len(wantHorizons) != 1 {
		t.Fatalf("before the upgrade %d index entries of %d are in village scopes, %d of %d latest entries: the test wants both kinds",
			villages, len(entries), len(latest)-len(wantLatest), len(latest))
	}

	defer store.SetMigrationChunk(3)()
	starts := 0
	for ; starts < 200; starts++ {
		stop := store.StopMigrationToAfter(10, 1)
		st, err := store.Open(dir, store.Options{})
		stop()
		if err == nil {
			for _, m := range st.Migrated() {
				if m.To <= 10 {
					t.Errorf("the last start ran %+v, after the upgrade's last step", m)
				}
			}
			st.Close()
			break
		}
		if !errors.Is(err, store.ErrMigrationStopped) {
			t.Fatal(err)
		}
		if got := rawSchema(t, dir); got == 9 {
			rawView(t, dir, func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("meta")).Get(villageProgress) == nil {
					t.Errorf("start %d: a stopped upgrade keeps no progress", starts)
				}
				return nil
			})
		}
	}
	if starts < 6 {
		t.Fatalf("the upgrade took %d steps of 3 records: the test wants it stopped in each of its phases", starts)
	}
	if got := rawSchema(t, dir); got != store.SchemaVersion {
		t.Fatalf("schema %d after the upgrade", got)
	}
	rawView(t, dir, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("meta")).Get(villageProgress) != nil {
			t.Error("the upgrade's progress is still in meta")
		}
		return nil
	})
	if got := rawIndexAt(t, dir); !reflect.DeepEqual(got, wantEntries) {
		t.Errorf("after the upgrade the index entries are\n%v\nwant\n%v", got, wantEntries)
	}
	if got := rawLatestAt(t, dir); !reflect.DeepEqual(got, wantLatest) {
		t.Errorf("after the upgrade the latest entries are\n%v\nwant\n%v", got, wantLatest)
	}
	if got := rawHorizons(t, dir); !reflect.DeepEqual(got, wantHorizons) {
		t.Errorf("after the upgrade the horizons are %v, want %v", got, wantHorizons)
	}
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 || rep.Schema != store.SchemaVersion {
		t.Fatalf("check: %+v %v", rep, err)
	}

	// Every user pulls what their scope holds, computed from the states
	// and the directory, not from an index.
	var warnings, units, users []string
	rawView(t, dir, func(tx *bolt.Tx) error {
		for id := range rawAttempts(t, tx) {
			warnings = append(warnings, id)
		}
		tx.Bucket([]byte("units")).ForEach(func(k, _ []byte) error { units = append(units, string(k)); return nil })
		return tx.Bucket([]byte("users")).ForEach(func(k, _ []byte) error { users = append(users, string(k)); return nil })
	})
	srv := servertest.Start(t, servertest.Options{Dir: dir, Now: fakeclock.At(v3Start.Add(time.Hour)).Now, AccessTTL: 24 * time.Hour})
	kinds := map[string]int{}
	for _, in := range servertest.CityUsers {
		d := srv.Login(t, in.Username, servertest.CityPassword)
		user := d.Login.User
		held := map[string]bool{}
		for _, id := range warnings {
			w, err := srv.Store.Warning(id)
			if err != nil || w == nil {
				t.Fatalf("warning %s: %v", id, err)
			}
			if user.Role == syncproto.RoleVillage && w.HeldBy(user.ID) || user.Role != syncproto.RoleVillage && syncproto.InScope(user.Unit, w.Unit) {
				held[syncproto.EntityWarning+"/"+id] = true
			}
		}
		if user.Role != syncproto.RoleVillage {
			for _, code := range units {
				if syncproto.InScope(user.Unit, code) {
					held[syncproto.EntityUnit+"/"+code] = true
				}
			}
			for _, id := range users {
				u, err := srv.Store.User(id)
				if err != nil {
					t.Fatal(err)
				}
				if u.Role == syncproto.RoleVillage && syncproto.InScope(user.Unit, u.Unit) {
					held[syncproto.EntityUser+"/"+id] = true
				}
			}
		}
		for _, limit := range []int{1, syncproto.MaxPullLimit} {
			got := pullPages(t, d, "", syncproto.PullRequest{Limit: limit}, nil)
			if twice := got.sentTwice(); len(twice) > 0 {
				t.Errorf("%s: pages of %d sent %v more than once", in.Username, limit, twice)
			}
			pulledKeys := map[string]bool{}
			for k := range got.state {
				pulledKeys[k] = true
				kinds[user.Role+" "+k[:strings.IndexByte(k, '/')]]++
			}
			if !maps.Equal(pulledKeys, held) {
				t.Errorf("%s (%s): a pull from nothing in pages of %d brought %v, want %v", in.Username, user.Role, limit, pulledKeys, held)
			}
		}
	}
	for _, k := range []string{"village warning", "township warning", "township unit", "township user", "county warning", "center warning"} {
		if kinds[k] == 0 {
			t.Errorf("no %s pulled: the test wants each role's scope to hold something (%v)", k, kinds)
		}
	}
}

// TestCheck_VillageScopeLeftOver: the check of a schema-10 store finds a
// village unit's scope index, its horizon and a latest entry naming it,
// which the write path no longer writes and the upgrade deleted.
func TestCheck_VillageScopeLeftOver(t *testing.T) {
	dir, _ := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	const village = "unit/" + servertest.UnitVillA1
	var id string
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		if err := rawSubRecords(tx, 'l', func(k, _, _ []byte) error {
			id = string(k)
			return nil
		}); err != nil {
			return err
		}
		b, err := tx.Bucket([]byte("idx")).CreateBucket([]byte(village))
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, 1), append([]byte("pw"), id...)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte("horizons")).Put([]byte(village), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		lb, k := rawLatestPlace(tx, []byte("w"+id))
		return lb.Put(k, append(bytes.Clone(lb.Get(k)), encodeLatest([]latestOf{{scope: village, seq: 1}})...))
	})
	var idx, horizon, latest bool
	for _, p := range rep.Problems {
		switch {
		case strings.Contains(p, "idx holds "+village):
			idx = true
		case strings.Contains(p, "horizons holds "+village):
			horizon = true
		case strings.Contains(p, id) && strings.Contains(p, "names "+village):
			latest = true
		}
	}
	if !idx || !horizon || !latest {
		t.Fatalf("check found %q: want the village index %v, its horizon %v, the latest entry naming it %v", rep.Problems, idx, horizon, latest)
	}
}

// TestWrite_NoVillageScope: ops that dispatch warnings to villages, assign
// them to cadres and record attempts write no entry into a village unit's
// scope, and every other scope still gets theirs.
func TestWrite_NoVillageScope(t *testing.T) {
	c := newCompactCity(t, 8)
	c.work(t, 40)
	scopes := map[string]int{}
	for _, e := range rawIndex(t, c.srv.Store) {
		scopes[e.Scope]++
	}
	users := 0
	for scope := range scopes {
		if villageScope(scope) {
			t.Errorf("the index of %s holds %d entries", scope, scopes[scope])
		}
		if strings.HasPrefix(scope, "user/") {
			users++
		}
	}
	for _, code := range []string{servertest.UnitCity, servertest.UnitCounty, servertest.UnitTownA, servertest.UnitTownB} {
		if scopes["unit/"+code] == 0 {
			t.Errorf("the index of unit %s is empty", code)
		}
	}
	if users == 0 {
		t.Error("no user scope has an entry")
	}
}

// TestIndexValues_BothForms: a store upgraded from schema 3 holds index
// entries that name warnings by their ids' text, and from schema 11 the
// write path names them by their ids' 16 bytes. New entries are the
// compact form; pulls from nothing and from a cursor before the new
// writes, in pages of one and of the most, send each record once and
// agree; the feedback export reads both; compaction keeps only the newest
// entry of a record whichever form the older ones have; the check is
// clean.
func TestIndexValues_BothForms(t *testing.T) {
	dir, _ := copyV3(t)
	clock := fakeclock.At(v3Start.Add(time.Hour))
	srv := servertest.Start(t, servertest.Options{Dir: dir, Now: clock.Now, AccessTTL: 24 * time.Hour})
	st := srv.Store
	old := rawIndex(t, st)
	var warnings []string
	seen := map[string]bool{}
	for _, e := range old {
		if e.Rec[0] == 'w' && !seen[e.Rec] {
			seen[e.Rec] = true
			warnings = append(warnings, e.Rec[1:])
		}
	}
	slices.Sort(warnings)
	devs := map[string]*servertest.Device{}
	cursors := map[string]string{}
	ids := map[string]string{}
	for _, u := range servertest.CityUsers {
		d := srv.Login(t, u.Username, servertest.CityPassword)
		devs[u.Username], ids[u.Username] = d, d.Login.User.ID
		cursors[u.Username] = pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil).cursor
	}
	ops := &opMaker{rnd: mrand.New(mrand.NewPCG(11, 11)), warnings: warnings, cadres: []string{ids["a1"], ids["a2x"], ids["a2y"], ids["b1"]}, clock: clock.Now}
	center := devs["center1"]
	for range 60 {
		clock.Add(time.Minute)
		if _, err := center.Push(context.Background(), syncproto.PushRequest{DeviceID: center.ID, Ops: []syncproto.Op{ops.op(center)}}); err != nil {
			t.Fatalf("push: %v", err)
		}
	}

	// Every warning entry written since is 'W' and 16 bytes; the old ones
	// are text.
	compact, text := 0, 0
	if err := st.RawDB().View(func(tx *bolt.Tx) error {
		idx := tx.Bucket([]byte("idx"))
		return idx.ForEachBucket(func(scope []byte) error {
			return idx.Bucket(scope).ForEach(func(k, v []byte) error {
				switch {
				case v[1] == 'W' && len(v) == 18:
					compact++
				case v[1] == 'w' && len(v) == 38:
					text++
				case v[1] == 'w' || v[1] == 'W':
					t.Errorf("%s: the entry at %x is %q", scope, k, v)
				}
				return nil
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	if compact < 60 || text == 0 {
		t.Fatalf("%d compact and %d text warning entries: the test wants both", compact, text)
	}

	truth := map[string]*pulled{}
	for u, d := range devs {
		truth[u] = pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
		for _, from := range []string{"", cursors[u]} {
			got := pullPages(t, d, from, syncproto.PullRequest{Limit: 1}, nil)
			if twice := got.sentTwice(); len(twice) > 0 || got.reset {
				t.Errorf("%s: a pull from %q in pages of one sent %v more than once (reset %v)", u, from, twice, got.reset)
			}
			if from == "" && !maps.Equal(got.state, truth[u].state) {
				t.Errorf("%s: a pull from nothing in pages of one holds %d records, in one page %d", u, len(got.state), len(truth[u].state))
			}
		}
	}
	fb, err := st.Feedback(servertest.UnitCity, "", syncproto.MaxPullLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Items) != len(warnings) {
		t.Errorf("the city's feedback holds %d warnings, want %d", len(fb.Items), len(warnings))
	}

	if _, err := st.CompactIndex(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	after := rawIndex(t, st)
	if want := newestEntries(rawIndex(t, st)); len(after) != len(want) || len(after) >= len(old)+compact {
		t.Errorf("after compaction the indexes hold %d entries of %d records (%d before)", len(after), len(want), len(old)+compact)
	}
	for u, d := range devs {
		if got := pullPages(t, d, "", syncproto.PullRequest{Limit: 1}, nil); !maps.Equal(got.state, truth[u].state) {
			t.Errorf("%s: after compaction a pull from nothing holds %d records, before %d", u, len(got.state), len(truth[u].state))
		}
	}
	srv.Close()
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}
