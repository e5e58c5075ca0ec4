package store_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// listIDs pages through a list of unit, limit items a page, and returns
// the ids in the order served.
func listIDs(t *testing.T, st *store.Store, q store.ListQuery, limit int) []string {
	t.Helper()
	q.Limit, q.Now = limit, time.Now()
	var ids []string
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("list of %s by %s: no end after 1000 pages", q.Unit, q.Sort)
		}
		list, err := st.List(q)
		if err != nil {
			t.Fatalf("list of %s by %s: %v", q.Unit, q.Sort, err)
		}
		for _, it := range list.Items {
			ids = append(ids, it.ID)
		}
		if !list.More {
			return ids
		}
		q.Cursor = list.Cursor
	}
}

// wantList is the list of unit by sort worked out from the warnings
// themselves: those of its subtree (the unfinished ones when unfinished),
// ordered by the sort's time in seconds and then id, newest first but for
// deadlines.
func wantList(ws []syncproto.Warning, unit, sort string, unfinished bool) []string {
	var in []syncproto.Warning
	for _, w := range ws {
		if syncproto.InScope(unit, w.Unit) && (!unfinished || w.Status != syncproto.WarningClosed) {
			in = append(in, w)
		}
	}
	at := func(w syncproto.Warning) int64 {
		switch sort {
		case store.SortDeadline:
			return w.Deadline.Unix()
		case store.SortWarned:
			return w.WarnedAt.Unix()
		}
		return w.ReceivedAt.Unix()
	}
	slices.SortFunc(in, func(a, b syncproto.Warning) int {
		c := int(at(a) - at(b))
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if sort != store.SortDeadline {
			c = -c
		}
		return c
	})
	ids := make([]string, len(in))
	for i, w := range in {
		ids[i] = w.ID
	}
	return ids
}

var unfinishedStatuses = []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned, syncproto.WarningInProgress, syncproto.WarningResolved}

// checkLists compares every list of every unit of units, in each order and
// in pages of 1, 3 and 1000, with what the warnings themselves give.
func checkLists(t *testing.T, st *store.Store, ws []syncproto.Warning, units []string) {
	t.Helper()
	for _, unit := range units {
		for _, sort := range []string{store.SortReceived, store.SortDeadline, store.SortWarned} {
			want := wantList(ws, unit, sort, false)
			for _, limit := range []int{1, 3, 1000} {
				if diff := cmp.Diff(want, listIDs(t, st, store.ListQuery{Unit: unit, Sort: sort}, limit)); diff != "" {
					t.Errorf("list of %s by %s in pages of %d (-want +got):\n%s", unit, sort, limit, diff)
				}
			}
		}
		want := wantList(ws, unit, store.SortDeadline, true)
		got := listIDs(t, st, store.ListQuery{Unit: unit, Sort: store.SortDeadline, Status: unfinishedStatuses}, 2)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("list of %s's unfinished by deadline (-want +got):\n%s", unit, diff)
		}
	}
}

// TestList_MergedAboveTownship: a warning is indexed in its township (or its
// own unit, above one) only, and the lists of a village (its township's, less
// the other villages'), a county and the city, which merge
// their townships' indexes with their own, hold every warning of their
// subtree once, in order, in pages of any size, across two counties and
// warnings at every level.
func TestList_MergedAboveTownship(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	tree := servertest.City()
	city := demo.City(1)
	var county2 string
	for _, c := range city.Children(servertest.UnitCity) {
		if c != servertest.UnitCounty {
			county2 = c
			break
		}
	}
	town2 := city.Children(county2)[0]
	vill2 := city.Children(town2)[0]
	for _, code := range []string{county2, town2, vill2} {
		tree.Units = append(tree.Units, syncproto.UnitInput{Code: code, Name: city.Name(code)})
	}
	srv.LoadTree(t, tree)

	units := []string{servertest.UnitCity, servertest.UnitCounty, servertest.UnitTownA, servertest.UnitVillA1, servertest.UnitVillA2,
		servertest.UnitTownB, servertest.UnitVillB1, county2, town2, vill2}
	risks := []string{syncproto.RiskHigh, syncproto.RiskMedium, syncproto.RiskLow}
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var rows []syncproto.FeedWarning
	for i := range 3 * len(units) {
		// Warned times repeat, so the order of equal times (by id) is
		// tested across sources too.
		rows = append(rows, servertest.FeedRow(fmt.Sprintf("M%02d", i), units[i%len(units)], risks[i%len(risks)], base.Add(time.Duration(i*7%11)*time.Minute)))
	}
	// Two imports: two received times.
	ids := srv.Import(t, "center1", rows[:len(rows)/2]...)
	for k, v := range srv.Import(t, "center1", rows[len(rows)/2:]...) {
		ids[k] = v
	}
	var ws []syncproto.Warning
	for _, id := range ids {
		w, err := srv.Store.Warning(id)
		if err != nil || w == nil {
			t.Fatalf("warning %s: %v", id, err)
		}
		ws = append(ws, *w)
	}
	checkLists(t, srv.Store, ws, units)

	// A cursor from another list is refused.
	list, err := srv.Store.List(store.ListQuery{Unit: servertest.UnitTownA, Sort: store.SortReceived, Limit: 1})
	if err != nil || !list.More {
		t.Fatalf("first page: %+v %v", list, err)
	}
	if _, err := srv.Store.List(store.ListQuery{Unit: servertest.UnitCounty, Sort: store.SortReceived, Limit: 1, Cursor: list.Cursor}); err == nil {
		t.Errorf("a township's cursor was taken by its county's list")
	}
}

// TestMigrate_V3ListsByTownship: the upgrade that drops the list keys
// above a warning's township, stopped after its first step and resumed,
// leaves each warning's keys in its unit and township only, and every
// list as the warnings give it.
func TestMigrate_V3ListsByTownship(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	above := func() (n int) {
		units := map[string]string{}
		for _, w := range ws {
			units[w.ID] = w.Unit
		}
		eachRawListKey(t, dir, func(unit string, id []byte) {
			own := units[listKeyID(id)]
			if unit != own && unit != syncproto.ParentCode(own) {
				n++
			} else if syncproto.UnitLevel(own) != syncproto.RoleVillage && unit != own {
				n++
			}
		})
		return n
	}
	// The upgrade that drops the list keys above a township is schema 9's.
	upgradeWithStop(t, dir, 9, above, "list keys above a township")
	if got := rawSchema(t, dir); got != store.SchemaVersion {
		t.Fatalf("schema %d after the upgrade", got)
	}
	if n := above(); n != 0 {
		t.Errorf("%d list keys above a township are left after the upgrade", n)
	}
	st, units := openWithUnits(t, dir, ws)
	checkLists(t, st, ws, units)
}

// The schema 15 upgrade deletes the village units' list indexes, which a
// village's list no longer reads (its township's serves it), writes the
// others' keys with the warning's id as 16 bytes, and carries on from
// where a stopped step left it. Every list of every unit is then what its
// warnings say.
func TestMigrate_V3NoVillageLists(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	textIDs := 0
	villageKeys := func() (n int) {
		textIDs = 0
		eachRawListKey(t, dir, func(unit string, id []byte) {
			if syncproto.UnitLevel(unit) == syncproto.RoleVillage {
				n++
			}
			if len(id) != 16 {
				textIDs++
			}
		})
		return n
	}
	upgradeWithStop(t, dir, 15, villageKeys, "village list keys")
	if n := villageKeys(); n != 0 || textIDs != 0 {
		t.Errorf("after the upgrade %d village list keys are left, %d keys name their warning by its text", n, textIDs)
	}
	st, units := openWithUnits(t, dir, ws)
	checkLists(t, st, ws, units)

	// A cursor a console page got before the upgrade names its last
	// warning by its text: it still goes on from there.
	tried := 0
	for _, unit := range units {
		q := store.ListQuery{Unit: unit, Sort: store.SortReceived, Limit: 1, Now: time.Now()}
		first, err := st.List(q)
		if err != nil || !first.More {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(first.Cursor)
		if err != nil || len(raw) < 16 {
			t.Fatalf("cursor %q: %v", first.Cursor, err)
		}
		old := append(slices.Clone(raw[:len(raw)-16]), uuid.UUID(raw[len(raw)-16:]).String()...)
		tried++
		q.Limit = 1000
		q.Cursor = first.Cursor
		want, err := st.List(q)
		if err != nil {
			t.Fatal(err)
		}
		q.Cursor = base64.RawURLEncoding.EncodeToString(old)
		got, err := st.List(q)
		if err != nil {
			t.Fatalf("list of %s from a schema-14 cursor: %v", unit, err)
		}
		if diff := cmp.Diff(want.Items, got.Items); diff != "" || len(got.Items) == 0 {
			t.Errorf("list of %s from a schema-14 cursor (-from the new one +from the old), %d items:\n%s", unit, len(got.Items), diff)
		}
	}
	if tried == 0 {
		t.Fatal("no unit's list has a second page: the test needs one")
	}
}

// listKeyID is the warning id at the end of a list key, written as its
// text up to schema 14 and as its 16 bytes from schema 15 on.
func listKeyID(b []byte) string {
	if len(b) == 16 {
		return uuid.UUID(b).String()
	}
	return string(b)
}

// openWithUnits opens the store in dir, closed when the test ends, and
// lists the units of ws's chains, sorted: what checkLists reads.
func openWithUnits(t *testing.T, dir string, ws []syncproto.Warning) (*store.Store, []string) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seen := map[string]bool{}
	for _, w := range ws {
		for _, u := range syncproto.UnitChain(w.Unit) {
			seen[u] = true
		}
	}
	return st, slices.Sorted(maps.Keys(seen))
}

// upgradeWithStop opens the store in dir up to the upgrade to schema to,
// where left (what the upgrade removes) must count some, then lets that
// upgrade take one step of two records, after which left must count
// fewer but some, then opens the store again to finish every upgrade:
// the upgrade is shown to carry on from a stop.
func upgradeWithStop(t *testing.T, dir string, to uint64, left func() int, what string) {
	t.Helper()
	defer store.SetMigrationChunk(2)()
	stop := store.StopMigrationToAfter(to, 0)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open up to the upgrade: %v", err)
	}
	before := left()
	if before == 0 {
		t.Fatalf("the store has no %s before the upgrade: the test needs some", what)
	}
	stop = store.StopMigrationToAfter(to, 1)
	_, err = store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the upgrade stopped: %v", err)
	}
	if mid := left(); mid == 0 || mid == before {
		t.Fatalf("after one step %d of %d %s are left: the test wants a half-done upgrade", mid, before, what)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open to finish the upgrade: %v", err)
	}
	st.Close()
}

// eachRawListKey calls fn with the unit and the warning id of each key of
// bucket list in the stopped store in dir.
func eachRawListKey(t *testing.T, dir string, fn func(unit string, id []byte)) {
	t.Helper()
	rawView(t, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("list")).ForEach(func(k, _ []byte) error {
			end := bytes.IndexByte(k, 0)
			fn(string(k[:end]), k[end+2+8:])
			return nil
		})
	})
}
