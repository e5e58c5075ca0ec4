package schema

import bolt "go.etcd.io/bbolt"

// How full bbolt fills a page before it splits one, bucket by bucket.
//
// bbolt splits a leaf that grew past a page into pages filled to the
// bucket's FillPercent (half, by default), and the setting lives only as
// long as the transaction's handle on the bucket. Half suits keys that
// arrive at random: both halves have room to grow. Most keys here arrive
// in order, or in order within a unit, a device or a day (a log seq, a
// UUIDv7 warning id, a time), and there a half-filled page stays half
// empty for good: nothing is inserted to the left of the newest key.
//
// Below 1 where records grow after their key arrived (a warning's state,
// attempts and history come over its first days, beside it), where keys
// come a little out of order (a list's by deadline or by warned time),
// and where they come in order within a device or a unit but among
// others': each device's results, each unit's day. There a key lands
// mid-page, and a split at 1 leaves a full page and one of a key or two;
// the results of a thousand phones pushing a few ops at a time stay 50%
// full at 1 and 68% at 0.8. The
// figures were chosen on the million-warning city of examples/scale
// (300,000 warnings; docs/BENCHMARKS.md): bucket warnings is 61% full at
// bbolt's default, 74% at 0.7, 66% at 0.8 and 51% at 0.9; bucket list 54%
// at the default, 72% at 0.8, 52% at 1. Buckets left out keep the
// default: their keys arrive at random (user ids, token hashes) or are
// few, and statshist's minute is a duration, not a time of day.
var fillPercents = map[string]float64{
	string(BucketLog):       1.0, // seq
	string(BucketAudit):     1.0, // seq
	string(BucketWarnings):  0.7, // UUIDv7 id, then its records beside it over its first days
	string(BucketList):      0.8, // unit, sort tag, time, id: in order within each list, but for a few late keys
	string(BucketOpen):      1.0, // deadline, id
	string(BucketExternal):  1.0, // the platform's id, by day and number (GJFZ-20261206-000123)
	string(BucketResults):   0.8, // device id, client_seq: in order within each device's
	string(BucketStats):     0.8, // unit, day: in order within each unit's
	string(BucketStatsType): 0.8, // unit, day, fraud type
	string(BucketToArchive): 1.0, // closed_at, id
	string(BucketToRedact):  1.0, // closed_at, id
}

// SetFill sets the fill of every bucket in write transaction tx that has
// one other than bbolt's default: each write transaction calls it before
// it writes. A bucket's handle is the same for the whole transaction, and
// the fill is read when the transaction commits.
func SetFill(tx *bolt.Tx) {
	for name, fill := range fillPercents {
		if b := tx.Bucket([]byte(name)); b != nil {
			b.FillPercent = fill
		}
	}
}
