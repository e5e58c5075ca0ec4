package store

import (
	"bytes"
	"iter"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// statsDelta gathers the statistics changes of the write transaction in
// progress (applier only), and writes them just before it commits. An op
// changes a warning's counts in each of the four units of its chain, and
// the ops of one transaction share most of those units and days: summed
// in memory, each record is read and written once a transaction instead
// of once an op (the writer spent about 9 µs an op there). Nothing in a
// write transaction reads the statistics, so no command misses a change
// not yet written; what is written is what the ops one by one would have
// left, so a group gives the same records however its entries are
// batched.
type statsDelta struct {
	scalars map[statsAt]*syncproto.Counts // bucket stats
	types   map[typeAt]*syncproto.Counts  // bucket statstype
	minutes map[minuteAt]int64            // bucket statshist
}

// statsAt names a unit's day; typeAt a fraud type's counts on it; minuteAt
// a minute of one of its histograms.
type (
	statsAt struct {
		unit string
		day  uint32
	}
	typeAt struct {
		statsAt
		fraudType string
	}
	minuteAt struct {
		statsAt
		kind   byte
		minute int64
	}
)

func newStatsDelta() *statsDelta {
	return &statsDelta{
		scalars: make(map[statsAt]*syncproto.Counts),
		types:   make(map[typeAt]*syncproto.Counts),
		minutes: make(map[minuteAt]int64),
	}
}

// reset forgets what a transaction gathered: at the start of the next.
func (d *statsDelta) reset() {
	clear(d.scalars)
	clear(d.types)
	clear(d.minutes)
}

// add adds sign times c to each unit of unit's chain on day, and to
// fraudType's counts there.
func (d *statsDelta) add(unit string, day uint32, fraudType string, c *syncproto.Counts, sign int64) {
	// The record holds the scalar counts; each histogram is a record of
	// its own (hist.go), read and written once a group.
	scalars := *c
	scalars.FirstContact, scalars.Resolution, scalars.Closing = nil, nil, nil
	counted := !scalars.Equal(&syncproto.Counts{})
	for _, u := range syncproto.UnitChain(unit) {
		at := statsAt{unit: u, day: day}
		// The record is written even when only a histogram changed, as
		// the ops one by one would.
		rec := d.scalars[at]
		if rec == nil {
			rec = &syncproto.Counts{}
			d.scalars[at] = rec
		}
		rec.Add(&scalars, sign)
		if counted {
			t := d.types[typeAt{statsAt: at, fraudType: fraudType}]
			if t == nil {
				t = &syncproto.Counts{}
				d.types[typeAt{statsAt: at, fraudType: fraudType}] = t
			}
			t.Add(&scalars, sign)
		}
		for _, kh := range [...]struct {
			kind byte
			h    map[int64]int64
		}{{histContact, c.FirstContact}, {histResolution, c.Resolution}, {histClosing, c.Closing}} {
			for minute, n := range kh.h {
				d.minutes[minuteAt{statsAt: at, kind: kh.kind, minute: minute}] += sign * n
			}
		}
	}
}

// flush writes what the transaction gathered, in key order: a unit's
// day always (a count that came back to 0 stays 0), a fraud type's day and
// a histogram's minute deleted when they come back to nothing.
func (d *statsDelta) flush(tx *bolt.Tx) error {
	stats := tx.Bucket(schema.BucketStats)
	for _, e := range sortedKeys(d.scalars, func(at statsAt) []byte { return statsKey(at.unit, at.day) }) {
		var rec syncproto.Counts
		unmarshalCounts(&rec, stats.Get(e.key))
		rec.Add(e.val, 1)
		if err := stats.Put(e.key, marshalCounts(&rec)); err != nil {
			return err
		}
	}
	types := tx.Bucket(schema.BucketStatsType)
	for _, e := range sortedKeys(d.types, func(at typeAt) []byte { return typeKey(at.unit, at.day, at.fraudType) }) {
		var rec syncproto.Counts
		unmarshalCounts(&rec, types.Get(e.key))
		rec.Add(e.val, 1)
		var err error
		if rec.Equal(&syncproto.Counts{}) {
			err = types.Delete(e.key)
		} else {
			err = types.Put(e.key, marshalCounts(&rec))
		}
		if err != nil {
			return err
		}
	}
	return flushHists(tx.Bucket(schema.BucketStatsHist), sortedKeys(d.minutes, func(at minuteAt) []byte { return histKey(at.unit, at.day, at.kind, at.minute) }))
}

// flushHists adds the minutes' changes, in the order of their old-form
// keys (so each histogram's come together, ascending), to the histogram
// records: each record read and written once, deleted when it comes back
// to nothing.
func flushHists(hist *bolt.Bucket, minutes []keyed[int64]) error {
	var base, delta, merged []histPair
	for len(minutes) > 0 {
		prefix, _, _ := histKeyForm(minutes[0].key)
		delta = delta[:0]
		for len(minutes) > 0 {
			p, minute, _ := histKeyForm(minutes[0].key)
			if !bytes.Equal(p, prefix) {
				break
			}
			delta = append(delta, histPair{minute: minute, n: minutes[0].val})
			minutes = minutes[1:]
		}
		var err error
		if base, err = parseHistRecord(base[:0], hist.Get(prefix)); err != nil {
			// Taken as empty, as an older count that did not decode was
			// taken as 0: a damaged histogram must not stop the pushes
			// that touch its day. fieldsyncd check reports it.
			base = base[:0]
		}
		merged = mergeHist(merged[:0], base, delta)
		if v := appendHistRecord(nil, merged); len(v) == 0 {
			err = hist.Delete(prefix)
		} else {
			err = hist.Put(bytes.Clone(prefix), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keyed is a map's value under its key as the bucket stores it.
type keyed[V any] struct {
	key []byte
	val V
}

// sortedKeys lists m's values with their keys encoded by key, in key
// order: puts in order walk each page once.
func sortedKeys[K comparable, V any](m map[K]V, key func(K) []byte) []keyed[V] {
	out := make([]keyed[V], 0, len(m))
	for k, v := range m {
		out = append(out, keyed[V]{key: key(k), val: v})
	}
	slices.SortFunc(out, func(a, b keyed[V]) int { return bytes.Compare(a.key, b.key) })
	return out
}

// ExpectedStats is what the statistics buckets hold for the warnings each
// yields (each with its attempts): the values of buckets stats, statstype
// and statshist by key, as the writer leaves them. Bucket stats may also
// hold a unit's day at zero, left by warnings that moved away or were
// removed. `fieldsyncd check` compares them with the buckets.
func ExpectedStats(each iter.Seq[*syncproto.Warning]) (stats, types, hists map[string][]byte) {
	d := newStatsDelta()
	for w := range each {
		c := syncproto.Contribution(w)
		d.add(w.Unit, syncproto.DayOf(w.WarnedAt), w.FraudType, &c, 1)
	}
	stats, types = map[string][]byte{}, map[string][]byte{}
	for at, c := range d.scalars {
		stats[string(statsKey(at.unit, at.day))] = marshalCounts(c)
	}
	for at, c := range d.types {
		if !c.Equal(&syncproto.Counts{}) {
			types[string(typeKey(at.unit, at.day, at.fraudType))] = marshalCounts(c)
		}
	}
	sums := histSums{}
	for at, n := range d.minutes {
		sums.add(histRecordKey(at.unit, at.day, at.kind), uint32(at.minute), n)
	}
	return stats, types, sums.records()
}
