package store

import (
	"bytes"
	"encoding/binary"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Statistics are kept in the write path, so a request reads a few records
// whatever the number of warnings: for each unit and each day (by warned_at,
// Beijing time) the counts of the warnings received that day in the unit's
// subtree, and the minutes to first contact and to resolution as exact
// histograms. Each time a warning changes, its old contribution is taken
// out of its old unit chain and its new one added to its new chain.
// Overdue depends on the clock, so it is counted at read time from an index
// of open warnings by deadline. What a warning counts for, how counts sum
// and how they become figures are syncproto's (Counts); this file keeps
// the sums.

// marshalCounts stores the scalar counts as fixed big-endian words, in
// the order of Scalars: they are rewritten on every change of a warning,
// in four units at once. Each histogram is a record of its own (hist.go).
func marshalCounts(c *syncproto.Counts) []byte {
	nums := c.Scalars()
	b := make([]byte, 0, 8*len(nums))
	for _, n := range nums {
		b = binary.BigEndian.AppendUint64(b, uint64(*n))
	}
	return b
}

// unmarshalCounts reads what marshalCounts wrote; a record of a store older
// than a count leaves that count 0.
func unmarshalCounts(c *syncproto.Counts, b []byte) {
	for i, n := range c.Scalars() {
		if len(b) >= 8*(i+1) {
			*n = int64(binary.BigEndian.Uint64(b[8*i:]))
		}
	}
}

func statsKey(unit string, day uint32) []byte {
	k := make([]byte, 0, len(unit)+5)
	k = append(append(k, unit...), '/')
	return binary.BigEndian.AppendUint32(k, day)
}

// Histogram kinds.
const (
	histContact    byte = 'c'
	histResolution byte = 'r'
	histClosing    byte = 'x'
)

func histKey(unit string, day uint32, kind byte, minute int64) []byte {
	k := statsKey(unit, day)
	k = append(k, kind)
	return binary.BigEndian.AppendUint32(k, uint32(minute))
}

// histValue is a histogram record's value, its count: a uvarint (schema
// 16 on), one byte for nearly every record, where it was 8 bytes
// big-endian. A count whose uvarint would take 8 bytes keeps the older
// form, so the length tells the two apart (HistCount).
func histValue(n int64) []byte {
	v := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), uint64(n))
	if len(v) == 8 {
		return binary.BigEndian.AppendUint64(v[:0], uint64(n))
	}
	return v
}

// HistCount is the count of a histogram record's value in either form;
// ok is false for a value of neither.
func HistCount(v []byte) (n int64, ok bool) {
	if len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v)), true
	}
	u, size := binary.Uvarint(v)
	return int64(u), size > 0 && size == len(v)
}

// openKey is a warning's key in the index of open warnings: its deadline,
// then its id as 16 bytes (schema 16 on; nothing reads the id back).
func openKey(w *syncproto.Warning) []byte {
	k := make([]byte, 0, 8+len(w.ID))
	k = binary.BigEndian.AppendUint64(k, uint64(w.Deadline.Unix()))
	return schema.AppendWarningID(k, w.ID)
}

// openKeyText is the key schema 15 and older gave a warning: its id as
// text. A warning open since then is deleted under it.
func openKeyText(w *syncproto.Warning) []byte {
	k := make([]byte, 0, 8+len(w.ID))
	k = binary.BigEndian.AppendUint64(k, uint64(w.Deadline.Unix()))
	return append(k, w.ID...)
}

func isOpen(w *syncproto.Warning) bool {
	return w != nil && syncproto.IsOpen(w.Status)
}

// updateStats moves a warning's contribution (syncproto.Contribution) from
// before to after: in the statistics the transaction writes as it commits
// (statsDelta), and in the index of open warnings at once.
func (s *Store) updateStats(tx *bolt.Tx, before, after *syncproto.Warning) error {
	var old, cur syncproto.Counts
	if before != nil {
		old = syncproto.Contribution(before)
	}
	cur = syncproto.Contribution(after)
	// A fraud type never changes; were it to, the full path below moves
	// the counts by type too.
	sameDay := before != nil && syncproto.DayOf(before.WarnedAt) == syncproto.DayOf(after.WarnedAt) && before.FraudType == after.FraudType
	switch {
	case sameDay && before.Unit == after.Unit && old.Equal(&cur):
	case sameDay && before.Unit == after.Unit:
		// The usual case, an op on a warning that stays put: add the
		// difference once per unit instead of taking out and adding back.
		var delta syncproto.Counts
		delta.Add(&cur, 1)
		delta.Add(&old, -1)
		s.stats.add(after.Unit, syncproto.DayOf(after.WarnedAt), after.FraudType, &delta, 1)
	default:
		if before != nil {
			s.stats.add(before.Unit, syncproto.DayOf(before.WarnedAt), before.FraudType, &old, -1)
		}
		s.stats.add(after.Unit, syncproto.DayOf(after.WarnedAt), after.FraudType, &cur, 1)
	}
	return updateOpen(tx, before, after)
}

// addMinutes adds sign times the histogram h of kind to unit's day, a
// key a minute: the form up to schema 16, which the schema 5 upgrade
// writes and the schema 17 upgrade turns into records.
func addMinutes(hist *bolt.Bucket, unit string, day uint32, kind byte, h map[int64]int64, sign int64) error {
	for minute, n := range h {
		hk := histKey(unit, day, kind, minute)
		cur, _ := HistCount(hist.Get(hk))
		cur += sign * n
		var err error
		if cur == 0 {
			err = hist.Delete(hk)
		} else {
			err = hist.Put(hk, histValue(cur))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// backfillStats adds what a store older than schema 5 did not keep of w:
// its counts by fraud type and its minutes to closing (the schema 5
// upgrade).
func backfillStats(tx *bolt.Tx, w *syncproto.Warning) error {
	c := syncproto.Contribution(w)
	day := syncproto.DayOf(w.WarnedAt)
	closing := c.Closing
	c.FirstContact, c.Resolution, c.Closing = nil, nil, nil
	for _, unit := range syncproto.UnitChain(w.Unit) {
		if err := addTypeCounts(tx, unit, day, w.FraudType, &c, 1); err != nil {
			return err
		}
		if err := addMinutes(tx.Bucket(schema.BucketStatsHist), unit, day, histClosing, closing, 1); err != nil {
			return err
		}
	}
	return nil
}

// updateOpen keeps the index of open warnings by deadline.
func updateOpen(tx *bolt.Tx, before, after *syncproto.Warning) error {
	b := tx.Bucket(schema.BucketOpen)
	if isOpen(before) && isOpen(after) && before.Deadline.Equal(after.Deadline) && before.Unit == after.Unit &&
		syncproto.DayOf(before.WarnedAt) == syncproto.DayOf(after.WarnedAt) {
		// The usual op leaves the entry as it was: putting it again would
		// still dirty its page, a 4 KB write for nothing.
		return nil
	}
	if isOpen(before) && (!isOpen(after) || !before.Deadline.Equal(after.Deadline) || before.Unit != after.Unit) {
		if err := b.Delete(openKey(before)); err != nil {
			return err
		}
		if err := b.Delete(openKeyText(before)); err != nil {
			return err
		}
	}
	if isOpen(after) {
		v := binary.BigEndian.AppendUint32([]byte(after.Unit+"/"), syncproto.DayOf(after.WarnedAt))
		return b.Put(openKey(after), v)
	}
	return nil
}

// StatsQuery asks for a unit's figures over days From..To (YYYYMMDD).
type StatsQuery struct {
	Unit     string
	From, To uint32
	Now      time.Time
}

// Stats reads the figures of a unit, its children and its days. It reads
// one record per unit and day, and the open warnings already overdue.
func (s *Store) Stats(q StatsQuery) (*syncproto.StatsResponse, error) {
	resp := &syncproto.StatsResponse{Unit: q.Unit, From: syncproto.FormatDay(q.From), To: syncproto.FormatDay(q.To), Children: []syncproto.UnitFigures{}, Daily: []syncproto.DayFigures{}}
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		units := tx.Bucket(schema.BucketUnits)
		var self syncproto.Unit
		if found, err := get(units, []byte(q.Unit), &self); err != nil {
			return err
		} else if !found {
			return syncproto.InvalidField("unit", "unit %s does not exist", q.Unit)
		}
		resp.Name = self.Name
		var children []syncproto.Unit
		c := units.Cursor()
		for k, v := c.Seek([]byte(q.Unit)); k != nil && bytes.HasPrefix(k, []byte(q.Unit)); k, v = c.Next() {
			if syncproto.ParentCode(string(k)) != q.Unit {
				continue
			}
			var u syncproto.Unit
			if err := decode(v, &u); err != nil {
				return err
			}
			children = append(children, u)
		}
		stats, hists := tx.Bucket(schema.BucketStats), tx.Bucket(schema.BucketStatsHist)
		read := func(unit string, fn func(day uint32, c *syncproto.Counts)) error {
			byDay := map[uint32]*syncproto.Counts{}
			sc := stats.Cursor()
			end := statsKey(unit, q.To)
			for k, v := sc.Seek(statsKey(unit, q.From)); k != nil && bytes.Compare(k, end) <= 0; k, v = sc.Next() {
				rec := &syncproto.Counts{}
				unmarshalCounts(rec, v)
				byDay[binary.BigEndian.Uint32(k[len(k)-4:])] = rec
			}
			hc := hists.Cursor()
			histEnd := append(statsKey(unit, q.To), 0xff)
			var pairs []histPair
			for k, v := hc.Seek(statsKey(unit, q.From)); k != nil && bytes.Compare(k, histEnd) < 0; k, v = hc.Next() {
				n := len(k)
				day := binary.BigEndian.Uint32(k[n-5 : n-1])
				rec := byDay[day]
				if rec == nil {
					continue
				}
				var h *map[int64]int64
				switch k[n-1] {
				case histContact:
					h = &rec.FirstContact
				case histResolution:
					h = &rec.Resolution
				case histClosing:
					h = &rec.Closing
				default:
					continue
				}
				var perr error
				if pairs, perr = parseHistRecord(pairs[:0], v); perr != nil {
					// Left out, as an older count that did not decode
					// was; fieldsyncd check reports it.
					continue
				}
				if *h == nil {
					*h = make(map[int64]int64, len(pairs))
				}
				for _, p := range pairs {
					(*h)[int64(p.minute)] += p.n
				}
			}
			for day, rec := range byDay {
				fn(day, rec)
			}
			return nil
		}
		notDue := notYetDue(tx, q)
		var total syncproto.Counts
		daily := map[uint32]*syncproto.Counts{}
		if err := read(q.Unit, func(day uint32, c *syncproto.Counts) {
			total.Add(c, 1)
			d := &syncproto.Counts{}
			d.Add(c, 1)
			daily[day] = d
		}); err != nil {
			return err
		}
		resp.Total = total.Figures(total.Open - notDue.total(q.Unit, 0))
		for _, ch := range children {
			var sum syncproto.Counts
			if err := read(ch.Code, func(_ uint32, c *syncproto.Counts) { sum.Add(c, 1) }); err != nil {
				return err
			}
			resp.Children = append(resp.Children, syncproto.UnitFigures{Unit: ch.Code, Name: ch.Name, Figures: sum.Figures(sum.Open - notDue.total(ch.Code, 0))})
		}
		if resp.Types, err = readTypes(tx, q); err != nil {
			return err
		}
		days := make([]uint32, 0, len(daily))
		for d := range daily {
			days = append(days, d)
		}
		slices.Sort(days)
		for _, d := range days {
			resp.Daily = append(resp.Daily, syncproto.DayFigures{Day: syncproto.FormatDay(d), Figures: daily[d].Figures(daily[d].Open - notDue.total(q.Unit, d))})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// dueCounts counts open warnings by unit and day.
type dueCounts map[string]map[uint32]int64

// notYetDue counts the open warnings whose deadline is still ahead, by unit
// and day: overdue is the open count less these. Only deadlines from now on
// are read, a day or two of warnings, whatever the size of the store.
func notYetDue(tx *bolt.Tx, q StatsQuery) dueCounts {
	o := dueCounts{}
	start := binary.BigEndian.AppendUint64(nil, uint64(q.Now.Unix()))
	c := tx.Bucket(schema.BucketOpen).Cursor()
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(v) < 5 {
			continue
		}
		unit := string(v[:len(v)-5])
		day := binary.BigEndian.Uint32(v[len(v)-4:])
		if day < q.From || day > q.To || !syncproto.InScope(q.Unit, unit) {
			continue
		}
		for _, u := range syncproto.UnitChain(unit) {
			if o[u] == nil {
				o[u] = map[uint32]int64{}
			}
			o[u][day]++
		}
	}
	return o
}

// total is the count of a unit, on one day or (day 0) all days.
func (o dueCounts) total(unit string, day uint32) int64 {
	if day != 0 {
		return o[unit][day]
	}
	var n int64
	for _, c := range o[unit] {
		n += c
	}
	return n
}
