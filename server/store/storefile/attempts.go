package storefile

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// checkAttempts checks the attempt records (schema 7 on) and counts them:
// each belongs to a warning, a warning's ordinals run from 0 with no gap
// (a reader assembles the attempts by walking them, and a gap would be an
// attempt lost), and no warning's state holds attempts of its own (they
// would be sent twice, or stale). It lists at most maxLatestProblems.
func checkAttempts(tx *bolt.Tx) (int, []string) {
	attempts, warnings := tx.Bucket(schema.BucketAttempts), tx.Bucket(schema.BucketWarnings)
	if attempts == nil || warnings == nil {
		return 0, []string{"attempts: the store has no attempts or no warnings"}
	}
	var problems []string
	more := 0
	report := func(format string, args ...any) {
		if len(problems) < maxLatestProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	n := 0
	var id []byte
	var want uint32
	_ = attempts.ForEach(func(k, _ []byte) error {
		n++
		w, i, ok := schema.SplitAttemptKey(k)
		if !ok {
			report("attempts: key %x is not a warning id and an ordinal", k)
			return nil
		}
		if !bytes.Equal(w, id) {
			id, want = bytes.Clone(w), 0
			if warnings.Get(id) == nil {
				report("attempts: attempts of warning %s, which the store does not hold", id)
			}
		}
		if i != want {
			report("attempts: warning %s has attempt %d where %d was expected", id, i, want)
		}
		want = i + 1
		return nil
	})
	err := warnings.ForEach(func(k, v []byte) error {
		var w syncproto.Warning
		if err := syncproto.UnmarshalMsgpack(v, &w); err != nil {
			return fmt.Errorf("warning %s: %w", k, err)
		}
		if len(w.Attempts) > 0 {
			report("attempts: the state of warning %s holds %d attempts of its own", k, len(w.Attempts))
		}
		return nil
	})
	if err != nil {
		report("attempts: %v", err)
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("attempts: %d more problems", more))
	}
	return n, problems
}
