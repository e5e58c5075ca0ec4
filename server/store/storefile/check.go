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
// (checkAttempts), and (schema 8 on) that every record beside a state in
// bucket warnings belongs to it and is of a known kind
// (checkWarningRecords), and that the statistics are what the warnings
// make (checkStats), and (schema 10 on) that it keeps nothing of a village
// unit's scope, which no device pulls (checkPulledScopes, checkLatest). It needs the server stopped
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
			rep.Warnings = schema.CountWarnings(w)
		}
		if rep.Schema >= 4 {
			rep.Problems = append(rep.Problems, checkLatest(tx)...)
		}
		if rep.Schema >= 5 {
			rep.Problems = append(rep.Problems, checkTally(tx)...)
		}
		if rep.Schema >= 10 {
			rep.Problems = append(rep.Problems, checkPulledScopes(tx)...)
		}
		var problems []string
		switch {
		case rep.Schema >= 8:
			rep.Attempts, problems = checkWarningRecords(tx)
			problems = append(problems, checkStats(tx)...)
		case rep.Schema == 7:
			rep.Attempts, problems = checkAttempts(tx)
		}
		rep.Problems = append(rep.Problems, problems...)
		return nil
	})
	return rep, err
}

// checkPulledScopes checks that a store of schema 10 on keeps no index and
// no horizon of a scope no device pulls (schema.PulledScope: a village
// unit's); checkLatest looks for latest entries of one. The write path
// writes none, and the schema 10 upgrade deleted what older code wrote.
func checkPulledScopes(tx *bolt.Tx) []string {
	found := problems{what: "scopes"}
	report := found.report
	if idx := tx.Bucket(schema.BucketIdx); idx != nil {
		_ = idx.ForEachBucket(func(scope []byte) error {
			if !schema.PulledScope(scope) {
				report("scopes: idx holds %s, the index of a scope no device pulls", scope)
			}
			return nil
		})
	}
	if horizons := tx.Bucket(schema.BucketHorizons); horizons != nil {
		_ = horizons.ForEach(func(scope, _ []byte) error {
			if !schema.PulledScope(scope) {
				report("scopes: horizons holds %s, a scope no device pulls", scope)
			}
			return nil
		})
	}
	return found.list()
}

// maxLatestProblems bounds what checkLatest lists: a store whose latest
// bucket is wrong is usually wrong everywhere.
const maxLatestProblems = 20

// checkLatest checks the latest values (bucket latest, and from schema 8
// those beside the warnings' states) against the scope indexes: a pull sends
// a record only from its latest entry, so an index entry newer than its
// record's latest, or without one, would be a record some device never
// gets. A latest entry must name an index entry of its record, or lie at
// or below its scope's tombstone horizon (its remove was dropped by a
// compaction that stopped before it forgot it).
func checkLatest(tx *bolt.Tx) []string {
	found := problems{what: "latest"}
	report := found.report
	idx, latest := tx.Bucket(schema.BucketIdx), schema.LatestOf(tx)
	if idx == nil || latest.Others == nil {
		return []string{"latest: the store has no scope indexes or no latest bucket"}
	}
	_ = idx.ForEachBucket(func(scope []byte) error {
		return idx.Bucket(scope).ForEach(func(k, v []byte) error {
			_, rec, ok := schema.ParseIndexValue(v)
			if !ok {
				report("latest: %s holds %x at seq %d, not an index entry", scope, v, schema.Uint64(k))
				return nil
			}
			seq := schema.Uint64(k)
			switch l, ok := schema.LatestSeq(latest, rec, scope); {
			case !ok:
				report("latest: %s holds %q at seq %d, and no latest entry of it", scope, rec, seq)
			case l < seq:
				report("latest: %s's latest entry of %q is seq %d, older than its entry at %d", scope, rec, l, seq)
			}
			return nil
		})
	})
	pulledOnly := schema.VersionOf(tx) >= 10
	checkValue := func(rec, v []byte) {
		n := 0
		whole := schema.ForEachLatest(v, func(scope []byte, seq uint64) bool {
			n++
			if pulledOnly && !schema.PulledScope(scope) {
				report("latest: the value of %q names %s (seq %d), a scope no device pulls, which schema 10 keeps nothing of", rec, scope, seq)
				return true
			}
			var e []byte
			if entries := idx.Bucket(scope); entries != nil {
				e = entries.Get(schema.U64(seq))
			}
			_, eRec, eOK := schema.ParseIndexValue(e)
			switch {
			case eOK && bytes.Equal(eRec, rec):
			case e == nil && seq <= schema.ScopeHorizon(tx, string(scope)):
			default:
				report("latest: %s's latest entry of %q is seq %d, which its index does not hold", scope, rec, seq)
			}
			return true
		})
		if !whole || n == 0 {
			report("latest: the value of %q is not a list of scopes and seqs", rec)
		}
	}
	_ = latest.Others.ForEach(func(rec, v []byte) error {
		if latest.Warnings != nil && len(rec) > 0 && rec[0] == schema.RecWarning {
			report("latest: bucket latest holds %q, a warning's, which schema 8 keeps beside its state", rec)
		}
		checkValue(rec, v)
		return nil
	})
	if latest.Warnings != nil {
		_ = latest.Warnings.ForEach(func(k, v []byte) error {
			if id, tag, rest, ok := schema.SplitWarningKey(k); ok && tag == schema.TagLatest && len(rest) == 0 {
				checkValue(append([]byte{schema.RecWarning}, id...), v)
			}
			return nil
		})
	}
	return found.list()
}

// problems gathers what one check finds: at most maxLatestProblems lines,
// then how many more, so that a badly broken store is not a line a record.
type problems struct {
	what  string
	lines []string
	more  int
}

func (p *problems) report(format string, args ...any) {
	if len(p.lines) < maxLatestProblems {
		p.lines = append(p.lines, fmt.Sprintf(format, args...))
	} else {
		p.more++
	}
}

func (p *problems) list() []string {
	if p.more > 0 {
		return append(p.lines, fmt.Sprintf("%s: %d more problems", p.what, p.more))
	}
	return p.lines
}
