package storefile

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// checkAttempts checks the attempt records of a schema-7 file, in bucket
// attempts, and counts them:
// each belongs to a warning, a warning's ordinals run from 0 with no gap
// (a reader assembles the attempts by walking them, and a gap would be an
// attempt lost), and no warning's state holds attempts of its own (they
// would be sent twice, or stale). It lists at most maxLatestProblems.
func checkAttempts(tx *bolt.Tx) (int, []string) {
	attempts, warnings := tx.Bucket(schema.BucketAttempts), tx.Bucket(schema.BucketWarnings)
	if attempts == nil || warnings == nil {
		return 0, []string{"attempts: the store has no attempts or no warnings"}
	}
	found := problems{what: "attempts"}
	report := found.report
	n := 0
	var id []byte
	var want uint32
	_ = attempts.ForEach(func(k, _ []byte) error {
		n++
		w, i, ok := schema.SplitAttemptKeyV7(k)
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
	checkStatesHoldNoAttempts(warnings, report)
	return n, found.list()
}

// checkStatesHoldNoAttempts reports each state of bucket warnings that
// does not decode (in either form: compact from schema 14 on, which has
// no room for attempts) or holds attempts of its own: they would be sent
// twice, or stale.
func checkStatesHoldNoAttempts(warnings *bolt.Bucket, report func(format string, args ...any)) {
	for k, v := range schema.WarningStates(warnings, nil) {
		var w syncproto.Warning
		if err := store.DecodeState(v, &w); err != nil {
			report("attempts: warning %s: %v", k, err)
			continue
		}
		if len(w.Attempts) > 0 {
			report("attempts: the state of warning %s holds %d attempts of its own", k, len(w.Attempts))
		}
	}
}

// checkWarningRecords checks the layout of bucket warnings of a schema-8
// file (schema/warnings.go) and counts the attempts: every sub-record
// lies right after the state of its warning (one of no warning would be
// a record no reader meets), has a known tag and a key of its tag's
// length, a warning's attempt ordinals run from 0 with no gap, each
// attempt decodes (in either form: compact from schema 13 on), no state
// holds attempts, and buckets attempts and history are gone. It lists at
// most maxLatestProblems.
func checkWarningRecords(tx *bolt.Tx) (int, []string) {
	warnings := tx.Bucket(schema.BucketWarnings)
	if warnings == nil {
		return 0, []string{"warnings: the store has no warnings"}
	}
	found := problems{what: "warnings"}
	report := found.report
	for _, name := range [][]byte{schema.BucketAttempts, schema.BucketHistory} {
		if tx.Bucket(name) != nil {
			report("warnings: bucket %s is still there; schema 8 keeps its records beside the states", name)
		}
	}
	n := 0
	var state []byte // the id of the last state met
	var want uint32  // the next attempt ordinal of that state
	_ = warnings.ForEach(func(k, v []byte) error {
		id, tag, rest, ok := schema.SplitWarningKey(k)
		if tag == 0 && ok {
			state, want = bytes.Clone(k), 0
			return nil
		}
		if !bytes.Equal(id, state) {
			report("warnings: record %q of warning %s, which the store does not hold", k, id)
			return nil
		}
		switch {
		case tag == schema.TagAttempt && len(rest) == 4:
			n++
			i := binary.BigEndian.Uint32(rest)
			if i != want {
				report("warnings: warning %s has attempt %d where %d was expected", id, i, want)
				want = i + 1
			} else {
				want++
			}
			var a syncproto.Attempt
			if err := store.DecodeAttempt(v, &a); err != nil {
				report("warnings: warning %s: attempt %d: %v", id, i, err)
			}
		case tag == schema.TagHistory && len(rest) == 0:
			if _, err := schema.ParseHistory(v); err != nil {
				report("warnings: warning %s: %v", id, err)
			}
		case tag == schema.TagHistory && len(rest) == 8, tag == schema.TagLatest && len(rest) == 0:
		default:
			report("warnings: key %q of warning %s is neither an attempt, its history nor its latest entries", k, id)
		}
		return nil
	})
	checkStatesHoldNoAttempts(warnings, report)
	return n, found.list()
}
