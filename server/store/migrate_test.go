package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/internal/testfs"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// copyV1 copies the schema-1 fixture into a new directory.
func copyV1(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	testfs.CopyTree(tb, v1Fixture, dir)
	return dir
}

// rawView reads a stopped store's file directly, without the store package.
func rawView(tb testing.TB, dir string, fn func(tx *bolt.Tx) error) {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.DBFile), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		tb.Fatal(err)
	}
}

func rawDecode(tb testing.TB, data []byte, v any) {
	tb.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		tb.Fatal(err)
	}
}

func rawSchema(tb testing.TB, dir string) (schema uint64) {
	rawView(tb, dir, func(tx *bolt.Tx) error {
		schema = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return nil
	})
	return schema
}

func rawDevices(tb testing.TB, dir string) map[string]store.Device {
	devices := map[string]store.Device{}
	rawView(tb, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("devices")).ForEach(func(_, v []byte) error {
			var d store.Device
			rawDecode(tb, v, &d)
			devices[d.ID] = d
			return nil
		})
	})
	return devices
}

// expectedLastSeen is what the schema 2 migration must give each device of
// a schema-1 store: the received_at of its newest log entry, read here by a
// plain walk of the whole log, else its Created.
func expectedLastSeen(tb testing.TB, dir string) map[string]time.Time {
	want := map[string]time.Time{}
	for id, d := range rawDevices(tb, dir) {
		want[id] = d.Created
	}
	fromLog := map[string]time.Time{}
	rawView(tb, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("log")).ForEach(func(_, v []byte) error {
			var e store.LogEntry
			if err := store.DecodeLogEntry(v, &e); err != nil {
				tb.Fatal(err)
			}
			if e.DeviceID != "" && e.ReceivedAt.After(fromLog[e.DeviceID]) {
				fromLog[e.DeviceID] = e.ReceivedAt
			}
			return nil
		})
	})
	for id, at := range fromLog {
		if _, ok := want[id]; ok {
			want[id] = at
		}
	}
	return want
}

func checkLastSeen(t *testing.T, dir string, want map[string]time.Time) {
	t.Helper()
	got := rawDevices(t, dir)
	if len(got) != len(want) {
		t.Fatalf("%d devices after the migration, want %d", len(got), len(want))
	}
	for id, at := range want {
		if !got[id].LastSeen.Equal(at) {
			t.Errorf("device %s (%s): LastSeen %v, want %v", id, got[id].Name, got[id].LastSeen, at)
		}
	}
}

func TestMigrate_V1Fixture(t *testing.T) {
	dir := copyV1(t)
	if got := rawSchema(t, dir); got != 1 {
		t.Fatalf("the fixture has schema %d, want 1", got)
	}
	want := expectedLastSeen(t, dir)
	// The fixture's clock makes some values known outright: a1's phone
	// last wrote to the log when its photo arrived (90 minutes in; after
	// that it only pulled), b1's phone never wrote (its login, 200 minutes
	// in, is all there is).
	const a1Phone, b1Phone = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000b1"
	if at := fixtureStart.Add(90 * time.Minute); !want[a1Phone].Equal(at) {
		t.Fatalf("a1's phone: the log says %v, the fixture's clock %v", want[a1Phone], at)
	}
	if at := fixtureStart.Add(200 * time.Minute); !want[b1Phone].Equal(at) {
		t.Fatalf("b1's phone: created %v, the fixture's clock %v", want[b1Phone], at)
	}
	if len(want) < 7 {
		t.Fatalf("the fixture has %d devices", len(want))
	}

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ran := st.Migrated()
	if !upgradesFrom(ran, 1) || ran[0].Steps != 1 || ran[1].Steps != 1 || ran[2].Steps != 1 {
		t.Fatalf("migrations run: %+v", ran)
	}
	st.Close()
	if got := rawSchema(t, dir); got != store.SchemaVersion {
		t.Fatalf("schema %d after opening, want %d", got, store.SchemaVersion)
	}
	checkLastSeen(t, dir, want)
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}

	// Opening again runs nothing.
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ran := st.Migrated(); len(ran) != 0 {
		t.Fatalf("second open ran %+v", ran)
	}
	st.Close()

	t.Run("SyncsAfterwards", func(t *testing.T) {
		ctx := context.Background()
		srv := servertest.Start(t, servertest.Options{Dir: dir})
		a1, err := srv.LoginDevice("a1", servertest.CityPassword, a1Phone)
		if err != nil {
			t.Fatal(err)
		}
		page, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID})
		if err != nil {
			t.Fatal(err)
		}
		// FX2 (returned to a1) and FX4 (dispatched to a1's village); FX1
		// was archived off the phone.
		var fx2 *syncproto.Warning
		puts := 0
		for _, c := range page.Changes {
			if w, ok := c.Data.(*syncproto.Warning); ok {
				puts++
				if w.ExternalID == "FX2" {
					fx2 = w
				}
			}
		}
		if puts != 2 || fx2 == nil || page.LastClientSeq != 2 {
			t.Fatalf("a1 pulled %d changes (last_client_seq %d): %+v", len(page.Changes), page.LastClientSeq, page.Changes)
		}
		reached := true
		resp, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{{
			ID: uuid.NewString(), ClientSeq: 3, Type: syncproto.OpRecorded, WarningID: fx2.ID, BaseVersion: fx2.Version, At: time.Now().UTC(),
			Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeDissuaded},
		}}})
		if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("push on the migrated store: %+v %v", resp, err)
		}
		d, ok, err := srv.Store.Device(a1.ID)
		if err != nil || !ok || !d.LastSeen.After(want[a1Phone]) {
			t.Fatalf("after a push LastSeen = %v (%v)", d, err)
		}
		lead := srv.Login(t, "leadA", servertest.CityPassword)
		all, err := lead.Pull(ctx, syncproto.PullRequest{DeviceID: lead.ID, Limit: 2000})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range all.Changes {
			if c.ID == fx2.ID && c.Data.(*syncproto.Warning).Status != syncproto.WarningResolved {
				t.Fatalf("the lead sees FX2 %s", c.Data.(*syncproto.Warning).Status)
			}
		}
	})
}

func TestMigrate_ResumesAfterAStop(t *testing.T) {
	dir := copyV1(t)
	want := expectedLastSeen(t, dir)
	defer store.SetMigrationChunk(3)()
	stop := store.StopMigrationAfter(2)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	if got := rawSchema(t, dir); got != 1 {
		t.Fatalf("a stopped migration left schema %d", got)
	}
	half := 0
	for _, d := range rawDevices(t, dir) {
		if !d.LastSeen.IsZero() {
			half++
		}
	}
	if half == 0 || half == len(want) {
		t.Fatalf("after two steps %d of %d devices have LastSeen; the test wants a half-done migration", half, len(want))
	}

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ran := st.Migrated(); !upgradesFrom(ran, 1) || ran[0].Steps < 2 {
		t.Fatalf("resumed migration: %+v", ran)
	}
	st.Close()
	if got := rawSchema(t, dir); got != store.SchemaVersion {
		t.Fatalf("schema %d", got)
	}
	checkLastSeen(t, dir, want)
	rawView(t, dir, func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("migrate2_next")); v != nil {
			t.Errorf("the migration's progress is still in meta")
		}
		return nil
	})
}

func TestOpen_RefusesNewerSchema(t *testing.T) {
	dir := copyV1(t)
	path := filepath.Join(dir, store.DBFile)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 99)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(dir, store.Options{})
	if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), fmt.Sprintf("%d this fieldsyncd", store.SchemaVersion)) {
		t.Fatalf("open of a schema-99 store: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("refusing the store changed its file")
	}
}

// TestOpen_NoUpgrade: a tool that only inspects a store (keys list) opens
// it without migrating, so the older server that wrote it still starts on
// it: an older store is refused and left byte for byte as it was.
func TestOpen_NoUpgrade(t *testing.T) {
	dir := copyV1(t)
	path := filepath.Join(dir, store.DBFile)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(dir, store.Options{NoUpgrade: true})
	if !errors.Is(err, store.ErrOlderSchema) || !strings.Contains(err.Error(), "schema version 1") {
		t.Fatalf("open of a schema-1 store without upgrade: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("refusing the store changed its file")
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir, store.Options{NoUpgrade: true})
	if err != nil {
		t.Fatalf("open of the upgraded store without upgrade: %v", err)
	}
	st.Close()
}

// TestMigrate_V2Fixture: a store that the schema-2 code compacted, with one
// global tombstone horizon in meta and the removes below it gone from every
// scope, upgrades to schema 3 keeping that horizon as every scope's floor:
// a cursor below it resets whatever its scope, one at it carries on, and
// compaction by this code leaves it as it is.
func TestMigrate_V2Fixture(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testfs.CopyTree(t, v2Fixture, dir)
	if got := rawSchema(t, dir); got != 2 {
		t.Fatalf("the fixture has schema %d, want 2", got)
	}
	var legacy uint64
	rawView(t, dir, func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("tombstone_horizon")); len(v) == 8 {
			legacy = binary.BigEndian.Uint64(v)
		}
		if tx.Bucket([]byte("horizons")) != nil {
			t.Error("the schema-2 fixture has per-scope horizons")
		}
		return nil
	})
	if legacy == 0 {
		t.Fatal("the fixture has no global tombstone horizon")
	}

	clock := fakeclock.At(v2Start.Add(40 * 24 * time.Hour))
	srv := servertest.Start(t, servertest.Options{Dir: dir, Now: clock.Now, AccessTTL: 24 * time.Hour})
	st := srv.Store
	if ran := st.Migrated(); !upgradesFrom(ran, 2) || ran[0].Steps != 1 {
		t.Fatalf("migrations run: %+v", ran)
	}
	a1, err := srv.LoginDevice("a1", servertest.CityPassword, "00000000-0000-4000-8000-0000000000a1")
	if err != nil {
		t.Fatal(err)
	}
	scope := store.UserScope(a1.Login.User.ID)
	for _, s := range []string{scope, store.UnitScope(servertest.UnitVillA1), store.UnitScope(servertest.UnitVillB1)} {
		if got := st.HorizonOf(s); got != legacy {
			t.Fatalf("%s's horizon %d after the upgrade, want the global %d", s, got, legacy)
		}
	}
	inc := st.Incarnation()
	cursorAt := func(seq uint64) string {
		c := syncproto.Cursor{Scope: syncproto.ScopeHash([]string{scope}), Seq: seq}
		copy(c.Incarnation[:], inc[:8])
		return c.Encode()
	}
	for _, tc := range []struct {
		seq   uint64
		reset bool
	}{{legacy - 1, true}, {legacy, false}} {
		page, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID, Cursor: cursorAt(tc.seq)})
		if err != nil {
			t.Fatal(err)
		}
		if page.Reset != tc.reset {
			t.Errorf("a cursor at %d under the global horizon %d: reset %v, want %v", tc.seq, legacy, page.Reset, tc.reset)
		}
	}
	if _, err := st.CompactIndex(ctx, store.DefaultTombstoneHorizon); err != nil {
		t.Fatal(err)
	}
	if got := legacyHorizon(t, st); got != legacy {
		t.Fatalf("compaction moved the global horizon from %d to %d", legacy, got)
	}
}

// rawIndexAt reads every scope index of a stopped store.
func rawIndexAt(tb testing.TB, dir string) []idxEntry {
	tb.Helper()
	var out []idxEntry
	rawView(tb, dir, func(tx *bolt.Tx) error {
		idx := tx.Bucket([]byte("idx"))
		return idx.ForEachBucket(func(scope []byte) error {
			return idx.Bucket(scope).ForEach(func(k, v []byte) error {
				kind, rec := rawIndexValue(tb, v)
				out = append(out, idxEntry{Scope: string(scope), Seq: binary.BigEndian.Uint64(k), Kind: kind, Rec: rec})
				return nil
			})
		})
	})
	return out
}

// rawLatestAt reads every scope's latest entries of a stopped store.
func rawLatestAt(tb testing.TB, dir string) map[[2]string]uint64 {
	tb.Helper()
	out := map[[2]string]uint64{}
	rawView(tb, dir, func(tx *bolt.Tx) error { return rawLatestTx(tx, out) })
	return out
}

// copyV3 copies the schema-3 fixture and returns it with the newest entry
// of each record per scope, which the schema 4 upgrade must record.
func copyV3(t *testing.T) (dir string, want map[[2]string]uint64) {
	t.Helper()
	dir = t.TempDir()
	testfs.CopyTree(t, v3Fixture, dir)
	if got := rawSchema(t, dir); got != 3 {
		t.Fatalf("the fixture has schema %d, want 3", got)
	}
	entries := rawIndexAt(t, dir)
	want = newestEntries(entries)
	if len(entries)-len(want) < 10 {
		t.Fatalf("the fixture's indexes hold %d entries of %d records: the test wants records with several", len(entries), len(want))
	}
	// The upgrade to schema 10 keeps no village unit's scope.
	maps.DeleteFunc(want, func(k [2]string, _ uint64) bool { return villageScope(k[0]) })
	return dir, want
}

// TestMigrate_V3Fixture: the schema 4 upgrade records the newest index
// entry of every record in every scope, and the upgraded store sends each
// record once, in any page size, from nothing or from an old cursor.
func TestMigrate_V3Fixture(t *testing.T) {
	dir, want := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ran := st.Migrated(); !upgradesFrom(ran, 3) || ran[0].Steps != 1 {
		t.Fatalf("migrations run: %+v", ran)
	}
	st.Close()
	if got := rawLatestAt(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the upgrade the latest entries are %v, want %v", got, want)
	}
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}

	// The fixture's work of the schema-3 code began at v3Start: a cursor
	// just before it has every record it changed still to come.
	var before uint64
	rawView(t, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("log")).ForEach(func(k, v []byte) error {
			var e store.LogEntry
			if err := store.DecodeLogEntry(v, &e); err != nil {
				t.Fatal(err)
			}
			if e.ReceivedAt.Before(v3Start) {
				before = binary.BigEndian.Uint64(k)
			}
			return nil
		})
	})
	srv := servertest.Start(t, servertest.Options{Dir: dir, Now: fakeclock.At(v3Start.Add(time.Hour)).Now, AccessTTL: 24 * time.Hour})
	inc := srv.Store.Incarnation()
	for _, u := range servertest.CityUsers {
		d, err := srv.LoginDevice(u.Username, servertest.CityPassword, uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		old := syncproto.Cursor{Scope: syncproto.ScopeHash([]string{scopeOfDevice(d)}), Seq: before}
		copy(old.Incarnation[:], inc[:8])
		truth := pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
		for _, from := range []string{"", old.Encode()} {
			got := pullPages(t, d, from, syncproto.PullRequest{Limit: 1}, nil)
			if twice := got.sentTwice(); len(twice) > 0 || got.reset {
				t.Errorf("%s: a pull from %q in pages of one sent %v more than once (reset %v)", u.Username, from, twice, got.reset)
			}
			if from == "" && !maps.Equal(got.state, truth.state) {
				t.Errorf("%s: a first sync in pages of one holds %d records, in one page %d", u.Username, len(got.state), len(truth.state))
			}
		}
	}
}

// TestMigrate_V3ResumesAfterAStop: the schema 4 upgrade stopped part-way
// (a crash) carries on at the next start and ends with the same latest
// entries as one run through.
func TestMigrate_V3ResumesAfterAStop(t *testing.T) {
	dir, want := copyV3(t)
	defer store.SetMigrationChunk(4)()
	stop := store.StopMigrationAfter(3)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	if got := rawSchema(t, dir); got != 3 {
		t.Fatalf("a stopped migration left schema %d", got)
	}
	if got := rawLatestAt(t, dir); len(got) == 0 || len(got) == len(want) {
		t.Fatalf("after three steps %d of %d latest entries are there; the test wants a half-done migration", len(got), len(want))
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ran := st.Migrated(); !upgradesFrom(ran, 3) || ran[0].Steps < 2 {
		t.Fatalf("resumed migration: %+v", ran)
	}
	st.Close()
	if got := rawLatestAt(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the resumed upgrade the latest entries are %v, want %v", got, want)
	}
	rawView(t, dir, func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("migrate4_next")); v != nil {
			t.Errorf("the migration's progress is still in meta")
		}
		return nil
	})
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// TestCheck_LatestDisagrees: the check finds a latest entry that no longer
// names its record's newest index entry, and one that names nothing.
func TestCheck_LatestDisagrees(t *testing.T) {
	dir, want := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var stale, missing [2]string
	for k, seq := range want {
		if seq > 1 && stale == ([2]string{}) {
			stale = k
		} else if missing == ([2]string{}) {
			missing = k
		}
	}
	// The stale one a seq older than it is; the missing one left out.
	edit := func(tx *bolt.Tx, k [2]string, change func(e *latestOf) bool) error {
		b, key := rawLatestPlace(tx, []byte(k[1]))
		var list []latestOf
		for _, e := range parseLatest(b.Get(key)) {
			if e.scope != k[0] || change(&e) {
				list = append(list, e)
			}
		}
		return b.Put(key, encodeLatest(list))
	}
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		if err := edit(tx, stale, func(e *latestOf) bool { e.seq--; return true }); err != nil {
			return err
		}
		return edit(tx, missing, func(*latestOf) bool { return false })
	})
	found := map[string]bool{}
	for _, p := range rep.Problems {
		for _, k := range [][2]string{stale, missing} {
			if strings.Contains(p, k[0]) && strings.Contains(p, fmt.Sprintf("%q", k[1])) {
				found[k[1]] = true
			}
		}
	}
	if !found[stale[1]] || !found[missing[1]] {
		t.Fatalf("check found %v", rep.Problems)
	}
}

// villageScope reports whether scope is a village unit's, which no device
// pulls and a store of schema 10 on keeps nothing of.
func villageScope(scope string) bool {
	code, ok := strings.CutPrefix(scope, "unit/")
	return ok && syncproto.UnitLevel(code) == syncproto.RoleVillage
}

// pulledLatest is the latest value v without its village scopes.
func pulledLatest(v []byte) []byte {
	var kept []latestOf
	for _, e := range parseLatest(v) {
		if !villageScope(e.scope) {
			kept = append(kept, e)
		}
	}
	return encodeLatest(kept)
}

// upgradesFrom reports whether ran is every migration from schema from up
// to SchemaVersion, in order.
func upgradesFrom(ran []store.Migration, from uint64) bool {
	if uint64(len(ran)) != store.SchemaVersion-from {
		return false
	}
	for i, m := range ran {
		if m.From != from+uint64(i) || m.To != m.From+1 {
			return false
		}
	}
	return true
}
