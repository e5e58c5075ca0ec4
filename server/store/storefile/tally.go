package storefile

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// checkTally sums what every warning adds to the to-do tallies
// (store.TallyOf) and compares it with the tallies kept (schema 5 on): a
// dashboard shows the kept ones, and the lists their links lead to show
// the warnings.
func checkTally(tx *bolt.Tx) []string {
	todo, warnings := tx.Bucket(schema.BucketTodo), tx.Bucket(schema.BucketWarnings)
	if todo == nil || warnings == nil {
		return []string{"tally: the store has no to-do tallies or no warnings"}
	}
	want := map[string]store.Tally{}
	var problems []string
	for k, v := range schema.WarningStates(warnings, nil) {
		var w syncproto.Warning
		if err := store.DecodeState(v, &w); err != nil {
			return []string{fmt.Sprintf("tally: warning %s: %v", k, err)}
		}
		t := store.TallyOf(&w)
		for _, u := range syncproto.UnitChain(w.Unit) {
			sum := want[u]
			sum.Open += t.Open
			sum.New += t.New
			sum.Dispatched += t.Dispatched
			sum.Resolved += t.Resolved
			sum.Escalated += t.Escalated
			sum.Flagged += t.Flagged
			want[u] = sum
		}
	}
	got := map[string]store.Tally{}
	_ = todo.ForEach(func(k, v []byte) error {
		got[string(k)] = store.ParseTally(v)
		return nil
	})
	units := map[string]bool{}
	for u := range want {
		units[u] = true
	}
	for u := range got {
		units[u] = true
	}
	var sorted []string
	for u := range units {
		sorted = append(sorted, u)
	}
	slices.Sort(sorted)
	for _, u := range sorted {
		if got[u] != want[u] && len(problems) < maxLatestProblems {
			problems = append(problems, fmt.Sprintf("tally: unit %s keeps %+v, its warnings make %+v", u, got[u], want[u]))
		}
	}
	return problems
}
