package storefile

import (
	"bytes"
	"fmt"
	"iter"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// checkStats checks (schema 8 on, where a warning's attempts lie beside
// its state) that the statistics are what the warnings make: each unit's
// day, its counts by fraud type and its histograms' minutes, as
// store.ExpectedStats adds them up. The writer keeps them by adding each
// change; a change lost or counted twice shows here.
func checkStats(tx *bolt.Tx) []string {
	found := problems{what: "stats"}
	report := found.report
	warnings := tx.Bucket(schema.BucketWarnings)
	if warnings == nil {
		return []string{"stats: the store has no warnings"}
	}
	var decodeErr error
	stats, types, hists := store.ExpectedStats(fullWarnings(warnings, &decodeErr))
	if decodeErr != nil {
		return []string{fmt.Sprintf("stats: %v", decodeErr)}
	}
	for _, b := range []struct {
		name []byte
		want map[string][]byte
		// zeroKept: a record at zero may stay (a unit's day whose
		// warnings moved away); elsewhere it is deleted.
		zeroKept bool
	}{
		{schema.BucketStats, stats, true},
		{schema.BucketStatsType, types, false},
		{schema.BucketStatsHist, hists, false},
	} {
		bucket := tx.Bucket(b.name)
		if bucket == nil {
			report("stats: the store has no bucket %s", b.name)
			continue
		}
		each := bucket.ForEach
		if bytes.Equal(b.name, schema.BucketStatsHist) {
			// A histogram is a record from schema 17 on, a key a minute
			// before it: both are read as records.
			records, bad, _ := store.HistRecords(bucket.ForEach)
			for _, k := range bad {
				report("stats: %s holds under %q a value that does not decode", b.name, k)
			}
			each = func(fn func(k, v []byte) error) error {
				for _, k := range slices.Sorted(maps.Keys(records)) {
					if err := fn([]byte(k), records[k]); err != nil {
						return err
					}
				}
				return nil
			}
		}
		seen := map[string]bool{}
		_ = each(func(k, v []byte) error {
			want, ok := b.want[string(k)]
			seen[string(k)] = true
			switch {
			case ok && !bytes.Equal(v, want):
				report("stats: %s holds %x under %q, its warnings make %x", b.name, v, k, want)
			case !ok && !(b.zeroKept && allZero(v)):
				report("stats: %s holds %x under %q, which no warning makes", b.name, v, k)
			}
			return nil
		})
		var lost []string
		for k := range b.want {
			if !seen[k] {
				lost = append(lost, k)
			}
		}
		slices.Sort(lost)
		for _, k := range lost {
			report("stats: %s lacks %q, which its warnings make %x", b.name, k, b.want[k])
		}
	}
	return found.list()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fullWarnings yields each warning of bucket warnings with its attempts;
// the first record that does not decode ends it, in *err.
func fullWarnings(warnings *bolt.Bucket, err *error) iter.Seq[*syncproto.Warning] {
	return func(yield func(*syncproto.Warning) bool) {
		var w *syncproto.Warning
		var wid []byte
		c := warnings.Cursor()
		for k, v := c.First(); ; k, v = c.Next() {
			id, tag, _, ok := schema.SplitWarningKey(k)
			if w != nil && (k == nil || !bytes.Equal(id, wid)) {
				if !yield(w) {
					return
				}
				w = nil
			}
			switch {
			case k == nil:
				return
			case !ok:
			case tag == 0:
				w, wid = &syncproto.Warning{}, bytes.Clone(id)
				if e := store.DecodeState(v, w); e != nil {
					*err = fmt.Errorf("warning %s: %w", id, e)
					return
				}
			case tag == schema.TagAttempt && w != nil:
				var a syncproto.Attempt
				if e := store.DecodeAttempt(v, &a); e != nil {
					*err = fmt.Errorf("warning %s: an attempt: %w", id, e)
					return
				}
				w.Attempts = append(w.Attempts, a)
			}
		}
	}
}
