package store

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The to-do tally is what a dashboard's to-do panel counts: for each unit,
// how many warnings of its subtree wait for something. It is kept in the
// write path, in the transaction of every change (saveWarning), so a
// dashboard reads one record per unit however many warnings there are.
// Overdue depends on the clock: it is the open count less the open
// warnings whose deadline is still ahead, read from the index of open
// warnings by deadline (read_stats.go), as the statistics do.

// Tally counts the warnings of a unit's subtree that wait for someone.
// Each count is what the warning list shows for a filter (the to-do
// panel's links): Open for the statuses not yet resolved, New for status
// new (waiting to be dispatched), Dispatched for status dispatched
// (waiting to be assigned), Resolved for status resolved (waiting for
// review), Escalated for the open warnings a cadre escalated, Flagged for
// those with an open flag. Overdue is counted when read.
type Tally struct {
	Open, New, Dispatched, Resolved, Escalated, Flagged int64
	Overdue                                             int64
}

// words lists the kept counts in their stored order: a new one goes at
// the end.
func (t *Tally) words() []*int64 {
	return []*int64{&t.Open, &t.New, &t.Dispatched, &t.Resolved, &t.Escalated, &t.Flagged}
}

// UnitTally is one unit's tally, by name.
type UnitTally struct {
	Unit, Name string
	Tally
}

// TodoResponse is a unit's tally and its children's.
type TodoResponse struct {
	Unit, Name string
	Total      Tally
	Children   []UnitTally
}

// TallyOf is what w adds to the tally of its unit and of every unit
// above: nothing for no warning. The consistency check sums it over the
// warnings to check the kept tallies.
func TallyOf(w *syncproto.Warning) Tally {
	var t Tally
	if w == nil {
		return t
	}
	one := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	open := syncproto.IsOpen(w.Status)
	t.Open = one(open)
	t.New = one(w.Status == syncproto.WarningNew)
	t.Dispatched = one(w.Status == syncproto.WarningDispatched)
	t.Resolved = one(w.Status == syncproto.WarningResolved)
	t.Escalated = one(open && w.Escalated)
	t.Flagged = one(w.OpenFlags() > 0)
	return t
}

// updateTally moves a warning's tally from before to after.
func updateTally(tx *bolt.Tx, before, after *syncproto.Warning) error {
	old, cur := TallyOf(before), TallyOf(after)
	if before != nil && before.Unit == after.Unit {
		if old == cur {
			return nil
		}
		return addTally(tx, after.Unit, &cur, &old)
	}
	if before != nil {
		if err := addTally(tx, before.Unit, nil, &old); err != nil {
			return err
		}
	}
	return addTally(tx, after.Unit, &cur, nil)
}

// addTally adds plus and takes away minus (either may be nil) in unit and
// every unit above it.
func addTally(tx *bolt.Tx, unit string, plus, minus *Tally) error {
	b := tx.Bucket(schema.BucketTodo)
	for _, u := range syncproto.UnitChain(unit) {
		var t Tally
		readTally(&t, b.Get([]byte(u)))
		for i, n := range t.words() {
			if plus != nil {
				*n += *plus.words()[i]
			}
			if minus != nil {
				*n -= *minus.words()[i]
			}
		}
		if err := b.Put([]byte(u), marshalTally(&t)); err != nil {
			return err
		}
	}
	return nil
}

func marshalTally(t *Tally) []byte {
	words := t.words()
	b := make([]byte, 0, 8*len(words))
	for _, n := range words {
		b = binary.BigEndian.AppendUint64(b, uint64(*n))
	}
	return b
}

// ParseTally reads a kept tally record (the value of bucket todo).
func ParseTally(b []byte) Tally {
	var t Tally
	readTally(&t, b)
	return t
}

// readTally reads what marshalTally wrote; a count the record lacks is 0.
func readTally(t *Tally, b []byte) {
	for i, n := range t.words() {
		if len(b) >= 8*(i+1) {
			*n = int64(binary.BigEndian.Uint64(b[8*i:]))
		}
	}
}

// Todo reads the tally of unit and of each of its children, with their
// overdue warnings at now.
func (s *Store) Todo(unit string, now time.Time) (*TodoResponse, error) {
	resp := &TodoResponse{Unit: unit, Children: []UnitTally{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		units := tx.Bucket(schema.BucketUnits)
		var self syncproto.Unit
		if found, err := get(units, []byte(unit), &self); err != nil {
			return err
		} else if !found {
			return syncproto.InvalidField("unit", "unit %s does not exist", unit)
		}
		resp.Name = self.Name
		ahead := openAhead(tx, unit, now)
		todo := tx.Bucket(schema.BucketTodo)
		readTally(&resp.Total, todo.Get([]byte(unit)))
		resp.Total.Overdue = resp.Total.Open - ahead[unit]
		c := units.Cursor()
		for k, v := c.Seek([]byte(unit)); k != nil && bytes.HasPrefix(k, []byte(unit)); k, v = c.Next() {
			if syncproto.ParentCode(string(k)) != unit {
				continue
			}
			var u syncproto.Unit
			if err := decode(v, &u); err != nil {
				return err
			}
			ch := UnitTally{Unit: u.Code, Name: u.Name}
			readTally(&ch.Tally, todo.Get(k))
			ch.Overdue = ch.Open - ahead[u.Code]
			resp.Children = append(resp.Children, ch)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// openAhead counts, for every unit in unit's subtree, the open warnings
// whose deadline is not yet passed at now (not overdue). Only deadlines
// from now on are read.
func openAhead(tx *bolt.Tx, unit string, now time.Time) map[string]int64 {
	counts := map[string]int64{}
	// A warning is overdue once now is after its deadline (IsOverdue):
	// one whose deadline is this very second is not yet.
	start := binary.BigEndian.AppendUint64(nil, uint64(now.Unix()))
	c := tx.Bucket(schema.BucketOpen).Cursor()
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(v) < 5 {
			continue
		}
		u := string(v[:len(v)-5])
		if !syncproto.InScope(unit, u) {
			continue
		}
		for _, a := range syncproto.UnitChain(u) {
			counts[a]++
		}
	}
	return counts
}
