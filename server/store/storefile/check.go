package storefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// CheckReport is what Check found.
type CheckReport struct {
	// Schema is the layout version the store records.
	Schema     uint64
	LogEntries uint64
	Warnings   int
	// Attempts counts the attempt records (schema 7 on).
	Attempts int
	Problems []string
}

// Check opens the store in dir read-only and checks it: bbolt's own
// consistency check of every page, that the log's sequences run from 1
// with no gap up to the bucket's sequence, and (schema 4 on) that each
// scope's latest entries agree with its index (checkLatest), and (schema
// 5 on) that each unit's to-do tally is what its warnings make
// (checkTally), and (schema 7 on) that every attempt record belongs to a
// warning whose state holds no attempts, with ordinals from 0 and no gap
// (checkAttempts). It needs the server stopped
// (bbolt locks the file).
func Check(dir string) (*CheckReport, error) {
	path := filepath.Join(dir, store.DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store at %s: %w", dir, err)
	}
	return CheckFile(path)
}

// CheckFile is Check of one bbolt file, wherever it is: a compacted copy is
// checked before it replaces the store's file.
func CheckFile(path string) (*CheckReport, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s (is fieldsyncd still running?): %w", path, err)
	}
	defer db.Close()
	rep := &CheckReport{}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			rep.Problems = append(rep.Problems, "bbolt: "+err.Error())
		}
		logs := tx.Bucket(schema.BucketLog)
		if logs == nil {
			return errors.New("this is not a fieldsync store: it has no log")
		}
		rep.Schema = schema.VersionOf(tx)
		var want uint64 = 1
		err := logs.ForEach(func(k, _ []byte) error {
			if got := binary.BigEndian.Uint64(k); got != want {
				rep.Problems = append(rep.Problems, fmt.Sprintf("log: seq %d where %d was expected", got, want))
				want = got
			}
			want++
			rep.LogEntries++
			return nil
		})
		if err != nil {
			return err
		}
		if seq := logs.Sequence(); seq != rep.LogEntries {
			rep.Problems = append(rep.Problems, fmt.Sprintf("log: %d entries but the sequence is at %d", rep.LogEntries, seq))
		}
		if w := tx.Bucket(schema.BucketWarnings); w != nil {
			rep.Warnings = w.Stats().KeyN
		}
		if rep.Schema >= 4 {
			rep.Problems = append(rep.Problems, checkLatest(tx)...)
		}
		if rep.Schema >= 5 {
			rep.Problems = append(rep.Problems, checkTally(tx)...)
		}
		if rep.Schema >= 7 {
			var problems []string
			rep.Attempts, problems = checkAttempts(tx)
			rep.Problems = append(rep.Problems, problems...)
		}
		return nil
	})
	return rep, err
}

// maxLatestProblems bounds what checkLatest lists: a store whose latest
// bucket is wrong is usually wrong everywhere.
const maxLatestProblems = 20

// checkLatest checks bucket latest against the scope indexes: a pull sends
// a record only from its latest entry, so an index entry newer than its
// record's latest, or without one, would be a record some device never
// gets. A latest entry must name an index entry of its record, or lie at
// or below its scope's tombstone horizon (its remove was dropped by a
// compaction that stopped before it forgot it).
func checkLatest(tx *bolt.Tx) []string {
	var problems []string
	more := 0
	report := func(format string, args ...any) {
		if len(problems) < maxLatestProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	idx, latest := tx.Bucket(schema.BucketIdx), tx.Bucket(schema.BucketLatest)
	if idx == nil || latest == nil {
		return []string{"latest: the store has no scope indexes or no latest bucket"}
	}
	_ = idx.ForEachBucket(func(scope []byte) error {
		return idx.Bucket(scope).ForEach(func(k, v []byte) error {
			if len(v) < 2 {
				return nil
			}
			seq := schema.Uint64(k)
			switch l, ok := schema.LatestSeq(latest, v[1:], scope); {
			case !ok:
				report("latest: %s holds %q at seq %d, and no latest entry of it", scope, v[1:], seq)
			case l < seq:
				report("latest: %s's latest entry of %q is seq %d, older than its entry at %d", scope, v[1:], l, seq)
			}
			return nil
		})
	})
	_ = latest.ForEach(func(rec, v []byte) error {
		n := 0
		schema.ForEachLatest(v, func(scope []byte, seq uint64) bool {
			n += 1 + len(scope) + 8
			var e []byte
			if entries := idx.Bucket(scope); entries != nil {
				e = entries.Get(schema.U64(seq))
			}
			switch {
			case len(e) >= 2 && bytes.Equal(e[1:], rec):
			case e == nil && seq <= schema.ScopeHorizon(tx, string(scope)):
			default:
				report("latest: %s's latest entry of %q is seq %d, which its index does not hold", scope, rec, seq)
			}
			return true
		})
		if n != len(v) || n == 0 {
			report("latest: the value of %q is not a list of scopes and seqs", rec)
		}
		return nil
	})
	if more > 0 {
		problems = append(problems, fmt.Sprintf("latest: %d more problems", more))
	}
	return problems
}
