package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Statistics are kept in the write path, so a request reads a few records
// whatever the number of warnings: for each unit and each day (by warned_at,
// Beijing time) the counts of the warnings received that day in the unit's
// subtree, and the minutes to first contact and to resolution as exact
// histograms. Each time a warning changes, its old contribution is taken
// out of its old unit chain and its new one added to its new chain.
// Overdue depends on the clock, so it is counted at read time from an index
// of open warnings by deadline.

// counters is what one warning contributes to a unit's day, and what a
// (unit, day) record holds: the sum of its warnings' contributions.
type counters struct {
	Received         int64 `json:"received"`
	Dispatched       int64 `json:"dispatched"`
	Assigned         int64 `json:"assigned"`
	Reached          int64 `json:"reached"`
	Dissuaded        int64 `json:"dissuaded"`
	AlreadyDefrauded int64 `json:"already_defrauded"`
	LossFen          int64 `json:"loss_fen"`
	NotTarget        int64 `json:"not_target"`
	Unreachable      int64 `json:"unreachable"`
	Refused          int64 `json:"refused"`
	Resolved         int64 `json:"resolved"`
	Closed           int64 `json:"closed"`
	// Open counts warnings not yet resolved: overdue is open minus those
	// whose deadline is still ahead, which the open index gives cheaply.
	Open         int64           `json:"open"`
	FirstContact map[int64]int64 `json:"first_contact,omitempty"`
	Resolution   map[int64]int64 `json:"resolution,omitempty"`
}

// numbers lists a counters' scalar fields, in their stored order.
func (c *counters) numbers() []*int64 {
	return []*int64{&c.Received, &c.Dispatched, &c.Assigned, &c.Reached, &c.Dissuaded, &c.AlreadyDefrauded,
		&c.LossFen, &c.NotTarget, &c.Unreachable, &c.Refused, &c.Resolved, &c.Closed, &c.Open}
}

// marshal stores the scalar counts as fixed big-endian words: they are
// rewritten on every change of a warning, in four units at once.
func (c *counters) marshal() []byte {
	nums := c.numbers()
	b := make([]byte, 0, 8*len(nums))
	for _, n := range nums {
		b = binary.BigEndian.AppendUint64(b, uint64(*n))
	}
	return b
}

func (c *counters) unmarshal(b []byte) {
	for i, n := range c.numbers() {
		if len(b) >= 8*(i+1) {
			*n = int64(binary.BigEndian.Uint64(b[8*i:]))
		}
	}
}

// contribution is what a warning adds to its unit's day.
func contribution(w *syncproto.Warning) counters {
	c := counters{Received: 1}
	if w.DispatchedAt != nil {
		c.Dispatched = 1
	}
	if w.AssignedAt != nil {
		c.Assigned = 1
	}
	for _, a := range w.Attempts {
		if a.Reached {
			c.Reached = 1
		}
		if a.Outcome == syncproto.OutcomeAlreadyDefrauded {
			c.LossFen = a.LossFen
		}
	}
	switch w.Outcome {
	case syncproto.OutcomeDissuaded:
		c.Dissuaded = 1
	case syncproto.OutcomeAlreadyDefrauded:
		c.AlreadyDefrauded = 1
	case syncproto.OutcomeNotTarget:
		c.NotTarget = 1
	case syncproto.OutcomeUnreachable:
		c.Unreachable = 1
	case syncproto.OutcomeRefused:
		c.Refused = 1
	}
	if w.Outcome != syncproto.OutcomeAlreadyDefrauded {
		c.LossFen = 0
	}
	if w.Status == syncproto.WarningResolved || w.Status == syncproto.WarningClosed {
		c.Resolved = 1
	}
	if w.Status == syncproto.WarningClosed {
		c.Closed = 1
	}
	if isOpen(w) {
		c.Open = 1
	}
	if w.FirstContactAt != nil {
		c.FirstContact = map[int64]int64{Minutes(w.WarnedAt, *w.FirstContactAt): 1}
	}
	if w.ResolvedAt != nil {
		c.Resolution = map[int64]int64{Minutes(w.WarnedAt, *w.ResolvedAt): 1}
	}
	return c
}

// Minutes is the whole minutes from a warning to a later moment, never
// negative.
func Minutes(from, to time.Time) int64 {
	return max(int64(to.Sub(from)/time.Minute), 0)
}

// add adds sign times o to c. The scalar counts saturate instead of
// wrapping: validation bounds what each warning contributes (a loss is at
// most syncproto.MaxLossFen), so no honest sum comes near the int64 limits,
// and should one ever get there (a store holding losses recorded before
// that bound) an official figure stops at the limit rather than turning
// into a large number of the other sign.
func (c *counters) add(o *counters, sign int64) {
	own, other := c.numbers(), o.numbers()
	for i, n := range own {
		*n = addSaturating(*n, *other[i], sign)
	}
	c.FirstContact = addHist(c.FirstContact, o.FirstContact, sign)
	c.Resolution = addHist(c.Resolution, o.Resolution, sign)
}

// addSaturating is a + b when sign is positive and a - b when it is not,
// clamped to the int64 range.
func addSaturating(a, b, sign int64) int64 {
	if sign < 0 {
		if b == math.MinInt64 {
			// -b does not exist; a - MinInt64 is at least a + MaxInt64.
			if a >= 0 {
				return math.MaxInt64
			}
			return a + math.MaxInt64 + 1
		}
		b = -b
	}
	sum := a + b
	switch {
	case a > 0 && b > 0 && sum < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && sum >= 0:
		return math.MinInt64
	}
	return sum
}

func addHist(h, o map[int64]int64, sign int64) map[int64]int64 {
	for k, v := range o {
		if h == nil {
			h = map[int64]int64{}
		}
		h[k] += sign * v
		if h[k] == 0 {
			delete(h, k)
		}
	}
	return h
}

func (c *counters) equal(o *counters) bool {
	return c.Received == o.Received && c.Dispatched == o.Dispatched && c.Assigned == o.Assigned &&
		c.Reached == o.Reached && c.Dissuaded == o.Dissuaded && c.AlreadyDefrauded == o.AlreadyDefrauded &&
		c.LossFen == o.LossFen && c.NotTarget == o.NotTarget && c.Unreachable == o.Unreachable &&
		c.Refused == o.Refused && c.Resolved == o.Resolved && c.Closed == o.Closed && c.Open == o.Open &&
		histEqual(c.FirstContact, o.FirstContact) && histEqual(c.Resolution, o.Resolution)
}

func histEqual(a, b map[int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
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
)

func histKey(unit string, day uint32, kind byte, minute int64) []byte {
	k := statsKey(unit, day)
	k = append(k, kind)
	return binary.BigEndian.AppendUint32(k, uint32(minute))
}

func openKey(w *syncproto.Warning) []byte {
	k := make([]byte, 0, 8+len(w.ID))
	k = binary.BigEndian.AppendUint64(k, uint64(w.Deadline.Unix()))
	return append(k, w.ID...)
}

func isOpen(w *syncproto.Warning) bool {
	return w != nil && w.Status != syncproto.WarningResolved && w.Status != syncproto.WarningClosed
}

// updateStats moves a warning's contribution from before to after.
func updateStats(tx *bolt.Tx, before, after *syncproto.Warning) error {
	var old, cur counters
	if before != nil {
		old = contribution(before)
	}
	cur = contribution(after)
	sameDay := before != nil && syncproto.DayOf(before.WarnedAt) == syncproto.DayOf(after.WarnedAt)
	if sameDay && before.Unit == after.Unit && old.equal(&cur) {
		return updateOpen(tx, before, after)
	}
	b, hist := tx.Bucket(bucketStats), tx.Bucket(bucketStatsHist)
	apply := func(w *syncproto.Warning, c *counters, sign int64) error {
		day := syncproto.DayOf(w.WarnedAt)
		for _, unit := range syncproto.UnitChain(w.Unit) {
			key := statsKey(unit, day)
			var rec counters
			rec.unmarshal(b.Get(key))
			rec.add(&counters{Received: c.Received, Dispatched: c.Dispatched, Assigned: c.Assigned, Reached: c.Reached,
				Dissuaded: c.Dissuaded, AlreadyDefrauded: c.AlreadyDefrauded, LossFen: c.LossFen, NotTarget: c.NotTarget,
				Unreachable: c.Unreachable, Refused: c.Refused, Resolved: c.Resolved, Closed: c.Closed, Open: c.Open}, sign)
			if err := b.Put(key, rec.marshal()); err != nil {
				return err
			}
			// Histograms live one minute per key, so a change touches a
			// key or two, not a whole day's distribution.
			for _, kh := range [2]struct {
				kind byte
				h    map[int64]int64
			}{{histContact, c.FirstContact}, {histResolution, c.Resolution}} {
				kind := kh.kind
				for minute, n := range kh.h {
					hk := histKey(unit, day, kind, minute)
					cur := int64(0)
					if v := hist.Get(hk); len(v) == 8 {
						cur = int64(binary.BigEndian.Uint64(v))
					}
					cur += sign * n
					var err error
					if cur == 0 {
						err = hist.Delete(hk)
					} else {
						err = hist.Put(hk, binary.BigEndian.AppendUint64(nil, uint64(cur)))
					}
					if err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if sameDay && before.Unit == after.Unit {
		// The usual case, an op on a warning that stays put: add the
		// difference once per unit instead of taking out and adding back.
		delta := cur
		delta.FirstContact = addHist(addHist(nil, cur.FirstContact, 1), old.FirstContact, -1)
		delta.Resolution = addHist(addHist(nil, cur.Resolution, 1), old.Resolution, -1)
		delta.add(&counters{Received: old.Received, Dispatched: old.Dispatched, Assigned: old.Assigned, Reached: old.Reached,
			Dissuaded: old.Dissuaded, AlreadyDefrauded: old.AlreadyDefrauded, LossFen: old.LossFen, NotTarget: old.NotTarget,
			Unreachable: old.Unreachable, Refused: old.Refused, Resolved: old.Resolved, Closed: old.Closed, Open: old.Open}, -1)
		if err := apply(after, &delta, 1); err != nil {
			return err
		}
		return updateOpen(tx, before, after)
	}
	if before != nil {
		if err := apply(before, &old, -1); err != nil {
			return err
		}
	}
	if err := apply(after, &cur, 1); err != nil {
		return err
	}
	return updateOpen(tx, before, after)
}

// updateOpen keeps the index of open warnings by deadline.
func updateOpen(tx *bolt.Tx, before, after *syncproto.Warning) error {
	b := tx.Bucket(bucketOpen)
	if isOpen(before) && (!isOpen(after) || !before.Deadline.Equal(after.Deadline) || before.Unit != after.Unit) {
		if err := b.Delete(openKey(before)); err != nil {
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
	err := s.db.View(func(tx *bolt.Tx) error {
		units := tx.Bucket(bucketUnits)
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
		stats, hists := tx.Bucket(bucketStats), tx.Bucket(bucketStatsHist)
		read := func(unit string, fn func(day uint32, c *counters)) error {
			byDay := map[uint32]*counters{}
			sc := stats.Cursor()
			end := statsKey(unit, q.To)
			for k, v := sc.Seek(statsKey(unit, q.From)); k != nil && bytes.Compare(k, end) <= 0; k, v = sc.Next() {
				rec := &counters{}
				rec.unmarshal(v)
				byDay[binary.BigEndian.Uint32(k[len(k)-4:])] = rec
			}
			hc := hists.Cursor()
			histEnd := append(statsKey(unit, q.To), 0xff)
			for k, v := hc.Seek(statsKey(unit, q.From)); k != nil && bytes.Compare(k, histEnd) < 0; k, v = hc.Next() {
				n := len(k)
				day := binary.BigEndian.Uint32(k[n-9 : n-5])
				rec := byDay[day]
				if rec == nil || len(v) != 8 {
					continue
				}
				minute, count := int64(binary.BigEndian.Uint32(k[n-4:])), int64(binary.BigEndian.Uint64(v))
				h := &rec.Resolution
				if k[n-5] == histContact {
					h = &rec.FirstContact
				}
				if *h == nil {
					*h = map[int64]int64{}
				}
				(*h)[minute] += count
			}
			for day, rec := range byDay {
				fn(day, rec)
			}
			return nil
		}
		notDue := notYetDue(tx, q)
		var total counters
		daily := map[uint32]*counters{}
		if err := read(q.Unit, func(day uint32, c *counters) {
			total.add(c, 1)
			d := &counters{}
			d.add(c, 1)
			daily[day] = d
		}); err != nil {
			return err
		}
		resp.Total = figures(&total, total.Open-notDue.total(q.Unit, 0))
		for _, ch := range children {
			var sum counters
			if err := read(ch.Code, func(_ uint32, c *counters) { sum.add(c, 1) }); err != nil {
				return err
			}
			resp.Children = append(resp.Children, syncproto.UnitFigures{Unit: ch.Code, Name: ch.Name, Figures: figures(&sum, sum.Open-notDue.total(ch.Code, 0))})
		}
		days := make([]uint32, 0, len(daily))
		for d := range daily {
			days = append(days, d)
		}
		slices.Sort(days)
		for _, d := range days {
			resp.Daily = append(resp.Daily, syncproto.DayFigures{Day: syncproto.FormatDay(d), Figures: figures(daily[d], daily[d].Open-notDue.total(q.Unit, d))})
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
	c := tx.Bucket(bucketOpen).Cursor()
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

func figures(c *counters, overdue int64) syncproto.Figures {
	f := syncproto.Figures{
		Received: c.Received, Dispatched: c.Dispatched, Assigned: c.Assigned, Reached: c.Reached,
		Dissuaded: c.Dissuaded, AlreadyDefrauded: c.AlreadyDefrauded, LossFen: c.LossFen, NotTarget: c.NotTarget,
		Unreachable: c.Unreachable, Refused: c.Refused, Resolved: c.Resolved, Closed: c.Closed, Overdue: overdue,
		FirstContact: quantiles(c.FirstContact), Resolution: quantiles(c.Resolution),
	}
	if c.Received > 0 {
		f.ClosureRate = float64(c.Closed) / float64(c.Received)
	}
	return f
}

// quantiles are nearest-rank: the p-quantile is the smallest value whose
// cumulative count reaches ceil(p*n).
func quantiles(h map[int64]int64) syncproto.Quantiles {
	keys := make([]int64, 0, len(h))
	var n int64
	for k, v := range h {
		keys = append(keys, k)
		n += v
	}
	if n == 0 {
		return syncproto.Quantiles{}
	}
	slices.Sort(keys)
	rank := func(p float64) int64 {
		need := int64(p*float64(n) + 0.999999999)
		need = max(need, 1)
		var cum int64
		for _, k := range keys {
			cum += h[k]
			if cum >= need {
				return k
			}
		}
		return keys[len(keys)-1]
	}
	return syncproto.Quantiles{N: n, Median: rank(0.5), P90: rank(0.9)}
}
