package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The statistics by fraud type (the dashboard's outcomes by type) are
// kept beside the others, in the same transaction: for each unit, day and
// fraud type, the scalar counts of the warnings received that day. Fraud
// types are few (the national platform's list), so a range's types are a
// few hundred records at most.

func typeKey(unit string, day uint32, fraudType string) []byte {
	return append(statsKey(unit, day), fraudType...)
}

// addTypeCounts adds sign times the scalar counts c to unit's day and
// fraud type, deleting a record that comes back to nothing received.
func addTypeCounts(tx *bolt.Tx, unit string, day uint32, fraudType string, c *syncproto.Counts, sign int64) error {
	b := tx.Bucket(schema.BucketStatsType)
	key := typeKey(unit, day, fraudType)
	var rec syncproto.Counts
	unmarshalCounts(&rec, b.Get(key))
	rec.Add(c, sign)
	if rec.Equal(&syncproto.Counts{}) {
		return b.Delete(key)
	}
	return b.Put(key, marshalCounts(&rec))
}

// readTypes sums q.Unit's counts by fraud type over q's days, most
// received first, then by name.
func readTypes(tx *bolt.Tx, q StatsQuery) ([]syncproto.TypeFigures, error) {
	sums := map[string]*syncproto.Counts{}
	c := tx.Bucket(schema.BucketStatsType).Cursor()
	prefix := []byte(q.Unit + "/")
	end := binary.BigEndian.AppendUint32(slices.Clone(prefix), q.To+1)
	for k, v := c.Seek(statsKey(q.Unit, q.From)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		if len(k) < len(prefix)+4 {
			continue
		}
		ft := string(k[len(prefix)+4:])
		if sums[ft] == nil {
			sums[ft] = &syncproto.Counts{}
		}
		var rec syncproto.Counts
		unmarshalCounts(&rec, v)
		sums[ft].Add(&rec, 1)
	}
	out := make([]syncproto.TypeFigures, 0, len(sums))
	for ft, c := range sums {
		out = append(out, syncproto.TypeFigures{FraudType: ft, Figures: c.Figures(0)})
	}
	slices.SortFunc(out, func(a, b syncproto.TypeFigures) int {
		return cmp.Or(cmp.Compare(b.Figures.Received, a.Figures.Received), cmp.Compare(a.FraudType, b.FraudType))
	})
	return out, nil
}
