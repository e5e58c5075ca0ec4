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

// TestStatsHist_CountsOfBothForms: a histogram record's count is a uvarint
// from schema 16, a byte for nearly every record; the 8-byte counts the
// schema-3 store holds read the same beside them (statistics and the
// check), and a count the warnings do not make is found in either form.
func TestStatsHist_CountsOfBothForms(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	checkUpgradedTally(t, dir, ws) // the upgrades add the minutes to closing
	var older, newer []byte
	rawView(t, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("statshist")).ForEach(func(k, v []byte) error {
			switch len(v) {
			case 8:
				older = bytes.Clone(k)
			case 1:
				newer = bytes.Clone(k)
			default:
				t.Errorf("statshist %q holds %x, a count of neither form", k, v)
			}
			return nil
		})
	})
	if older == nil || newer == nil {
		t.Fatalf("the upgraded store has no histogram record of each form (older %q, newer %q): the test needs both", older, newer)
	}
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of both forms: %+v %v", rep, err)
	}
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("statshist"))
		for _, k := range [][]byte{older, newer} {
			v := bytes.Clone(b.Get(k))
			v[len(v)-1]++ // one more warning in that minute than there is
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if len(rep.Problems) != 2 || !strings.Contains(rep.Problems[0], "statshist") || !strings.Contains(rep.Problems[1], "statshist") {
		t.Fatalf("check of two wrong counts found %v", rep.Problems)
	}
}
