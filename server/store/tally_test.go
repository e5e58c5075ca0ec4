package store_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// rawWarnings reads every warning of a stopped store.
func rawWarnings(tb testing.TB, dir string) []syncproto.Warning {
	var ws []syncproto.Warning
	rawView(tb, dir, func(tx *bolt.Tx) error {
		return rawStates(tx, func(_, v []byte) error {
			var w syncproto.Warning
			rawState(tb, v, &w)
			ws = append(ws, w)
			return nil
		})
	})
	return ws
}

// expectedTodo counts, from the warnings themselves, what the to-do
// tally of unit must hold at now.
func expectedTodo(ws []syncproto.Warning, unit string, now time.Time) store.Tally {
	var t store.Tally
	for _, w := range ws {
		if !syncproto.InScope(unit, w.Unit) {
			continue
		}
		open := syncproto.IsOpen(w.Status)
		add := func(n *int64, b bool) {
			if b {
				*n++
			}
		}
		add(&t.Open, open)
		add(&t.New, w.Status == syncproto.WarningNew)
		add(&t.Dispatched, w.Status == syncproto.WarningDispatched)
		add(&t.Resolved, w.Status == syncproto.WarningResolved)
		add(&t.Escalated, open && w.Escalated)
		add(&t.Flagged, w.OpenFlags() > 0)
		add(&t.Overdue, syncproto.IsOverdue(w.Status, w.Deadline, now))
	}
	return t
}

// checkUpgradedTally checks the schema 5 upgrade's work on the store in
// dir against its warnings: the tally of the root and of each child, the
// counts by fraud type, and how many closings the histograms hold.
func checkUpgradedTally(t *testing.T, dir string, ws []syncproto.Warning) {
	t.Helper()
	chain := syncproto.UnitChain(ws[0].Unit)
	root := chain[len(chain)-1]
	now := time.Now()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	todo, err := st.Todo(root, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(expectedTodo(ws, root, now), todo.Total); diff != "" {
		t.Errorf("root tally (-want +got):\n%s", diff)
	}
	if len(todo.Children) == 0 {
		t.Fatal("the root has no children")
	}
	for _, ch := range todo.Children {
		if diff := cmp.Diff(expectedTodo(ws, ch.Unit, now), ch.Tally); diff != "" {
			t.Errorf("tally of %s (-want +got):\n%s", ch.Unit, diff)
		}
	}
	stats, err := st.Stats(store.StatsQuery{Unit: root, From: 0, To: 99991231, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string][2]int64{}
	var closed int64
	for _, w := range ws {
		c := byType[w.FraudType]
		c[0]++
		if w.Outcome == syncproto.OutcomeDissuaded {
			c[1]++
		}
		byType[w.FraudType] = c
		if w.Status == syncproto.WarningClosed {
			closed++
		}
	}
	got := map[string][2]int64{}
	for _, tf := range stats.Types {
		got[tf.FraudType] = [2]int64{tf.Figures.Received, tf.Figures.Dissuaded}
	}
	if diff := cmp.Diff(byType, got); diff != "" {
		t.Errorf("received and dissuaded by fraud type (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(stats.Types, func(a, b syncproto.TypeFigures) int { return int(b.Figures.Received - a.Figures.Received) }) {
		t.Errorf("types are not most received first: %+v", stats.Types)
	}
	if stats.Total.Closing.N != closed || closed == 0 {
		t.Errorf("the closing histogram holds %d warnings, %d are closed", stats.Total.Closing.N, closed)
	}
}

// TestMigrate_V3TallyFixture: the schema 5 upgrade counts every warning
// of a schema-3 store (upgraded through 4) into the to-do tallies, the
// counts by fraud type and the minutes to closing, and the check is clean.
func TestMigrate_V3TallyFixture(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	checkUpgradedTally(t, dir, ws)
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// TestMigrate_V3TallyResumesAfterAStop: the schema 5 upgrade stopped
// after its first step carries on at the next start and counts each
// warning exactly once.
func TestMigrate_V3TallyResumesAfterAStop(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	if len(ws) <= 2 {
		t.Fatalf("the fixture has %d warnings: the test wants an upgrade of several steps", len(ws))
	}
	defer store.SetMigrationChunk(2)()
	stop := store.StopMigrationToAfter(5, 1)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	if got := rawSchema(t, dir); got != 4 {
		t.Fatalf("a stopped migration left schema %d", got)
	}
	checkUpgradedTally(t, dir, ws)
	rawView(t, dir, func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("migrate5_next")); v != nil {
			t.Errorf("the migration's progress is still in meta")
		}
		return nil
	})
}

// TestCheck_TallyDisagrees: the check finds a kept to-do tally that its
// unit's warnings do not make.
func TestCheck_TallyDisagrees(t *testing.T) {
	dir, _ := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of the upgraded store: %+v %v", rep, err)
	}
	unit := rawWarnings(t, dir)[0].Unit
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("todo"))
		v := bytes.Clone(b.Get([]byte(unit)))
		v[7]++ // one more open warning than there is
		return b.Put([]byte(unit), v)
	})
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "tally: unit "+unit+" ") {
		t.Fatalf("check found %v", rep.Problems)
	}
}

// TestStatsHist_RecordsFromMinuteKeys: the schema 17 upgrade turns the
// histograms' minute keys (the schema-3 store's 8-byte counts, and the
// uvarints its schema 5 upgrade adds) into a record a day. Stopped after
// its first step, with histograms cut by a step's end, and resumed, it
// leaves only records, which the statistics read and `fieldsyncd check`
// finds equal to what the warnings make; a wrong count in a record, and
// a record that does not decode, are found.
func TestStatsHist_RecordsFromMinuteKeys(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	isMinuteKey := func(k []byte) bool { return len(k) >= 10 && k[len(k)-10] == '/' }
	minuteKeys := func() (n int) {
		rawView(t, dir, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("statshist")).ForEach(func(k, _ []byte) error {
				if isMinuteKey(k) {
					n++
				}
				return nil
			})
		})
		return n
	}
	upgradeWithStop(t, dir, 17, minuteKeys, "histogram minute keys")
	checkUpgradedTally(t, dir, ws)
	var records [][]byte
	rawView(t, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("statshist")).ForEach(func(k, v []byte) error {
			if isMinuteKey(k) {
				t.Errorf("statshist %q is a minute key after the upgrade", k)
			} else if len(v) > 0 && v[len(v)-1] < 0x7e {
				records = append(records, bytes.Clone(k))
			}
			return nil
		})
	})
	if len(records) < 2 {
		t.Fatalf("the upgraded store has %d histogram records to edit: the test needs two", len(records))
	}
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of the upgraded histograms: %+v %v", rep, err)
	}
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("statshist"))
		v := bytes.Clone(b.Get(records[0]))
		v[len(v)-1] += 2 // the last minute's count (a zigzag varint) one more
		if err := b.Put(records[0], v); err != nil {
			return err
		}
		return b.Put(records[1], append(bytes.Clone(b.Get(records[1])), 0x80)) // a varint cut short
	})
	joined := strings.Join(rep.Problems, "\n")
	if len(rep.Problems) != 3 || !strings.Contains(joined, "its warnings make") || !strings.Contains(joined, "does not decode") || !strings.Contains(joined, "lacks") {
		t.Fatalf("check of a wrong count and a broken record found %v", rep.Problems)
	}
}
