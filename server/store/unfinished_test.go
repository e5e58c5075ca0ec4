package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMigrate_V3UnfinishedIndex: the schema 6 upgrade, stopped after its
// first step and resumed, indexes every warning not closed; a list of the
// unfinished by deadline then reads that index, so a budget of as many
// entries as there are unfinished warnings finds them all on its first
// page although closed warnings come before them in deadline order.
func TestMigrate_V3UnfinishedIndex(t *testing.T) {
	dir, _ := copyV3(t)
	ws := rawWarnings(t, dir)
	defer store.SetMigrationChunk(2)()
	stop := store.StopMigrationToAfter(6, 1)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var unfinished []syncproto.Warning
	var firstClosed time.Time
	for _, w := range ws {
		if w.Status != syncproto.WarningClosed {
			unfinished = append(unfinished, w)
		} else if firstClosed.IsZero() || w.Deadline.Before(firstClosed) {
			firstClosed = w.Deadline
		}
	}
	slices.SortFunc(unfinished, func(a, b syncproto.Warning) int {
		if c := a.Deadline.Unix() - b.Deadline.Unix(); c != 0 {
			return int(c)
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(unfinished) < 2 || firstClosed.IsZero() || !firstClosed.Before(unfinished[len(unfinished)-1].Deadline) {
		t.Fatalf("the fixture must hold unfinished warnings with closed ones due before them (%d unfinished)", len(unfinished))
	}
	want := make([]string, len(unfinished))
	for i, w := range unfinished {
		want[i] = w.ID
	}

	chain := syncproto.UnitChain(ws[0].Unit)
	defer store.SetListBudget(len(want))()
	list, err := st.List(store.ListQuery{Unit: chain[len(chain)-1], Sort: store.SortDeadline, Limit: 1000, Now: time.Now(),
		Status: []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned, syncproto.WarningInProgress, syncproto.WarningResolved}})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(list.Items))
	for i, it := range list.Items {
		got[i] = it.ID
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the unfinished by deadline (-want +got):\n%s", diff)
	}
}
