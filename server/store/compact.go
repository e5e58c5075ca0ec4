package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// Index compaction. A scope index holds an entry per change of a record in
// that scope, and a pull sends the record only from its latest entry
// (latest.go), with its current state: every older entry is dead
// weight, read and passed over by every device that pulls from before it.
// Compaction deletes those, and drops the remove entries (tombstones)
// older than a time horizon. A device whose
// cursor is below a tombstone dropped from its scope could miss that remove,
// so its next pull is a reset instead (see Pull), and it rebuilds its copy
// from the current state.
//
// Each scope keeps its own horizon (bucket horizons): the highest seq of a
// tombstone dropped from its index. A device of a scope that lost no
// tombstone it had not read carries on from its cursor however long it was
// away: most village cadres' scopes are quiet, and a reset re-downloads the
// scope over a poor link.
//
// It runs online. Deleting an entry older than another entry of the same
// record is safe at any moment (a device that had not read the old one will
// read the newer one, which carries the current state), so the reading runs
// in short read transactions and the deletes go through the writer in small
// batches between pushes. A batch that drops tombstones raises its scope's
// horizon in the same transaction, so no pull sees a tombstone gone without
// the horizon that covers it.

// DefaultTombstoneHorizon is how long a device may stay away and still
// carry on from its cursor after a compaction: as long as a refresh token
// lives, so a phone that must sign in again anyway is the one that resets.
const DefaultTombstoneHorizon = 30 * 24 * time.Hour

// MinTombstoneHorizon keeps a mistyped setting from resetting every phone
// that did not sync today.
const MinTombstoneHorizon = 24 * time.Hour

// Compaction batch sizes: entries read per read transaction, deletes per
// write.
var (
	compactReadChunk  = 20_000
	compactWriteChunk = 5_000
)

// CompactReport is what a compaction did.
type CompactReport struct {
	// Scopes is how many scope indexes it walked, Entries how many entries
	// it read.
	Scopes  int
	Entries int
	// Superseded is how many entries it removed for having a newer entry
	// of the same record in the same scope.
	Superseded int
	// Tombstones is how many remove entries older than the horizon it
	// dropped.
	Tombstones int
	// HorizonSeq is the newest log seq received more than the time horizon
	// ago: remove entries at or below it were old enough to drop.
	HorizonSeq uint64
	// ScopesMoved is how many scopes' horizons it raised: the devices of
	// those scopes whose cursor is below their new horizon reset.
	ScopesMoved int
}

// HorizonOf is the tombstone horizon of a scope bucket ("unit/<code>",
// "user/<id>"): a cursor of that scope below it resets. 0: no remove entry
// was ever dropped from it.
func (s *Store) HorizonOf(scope string) uint64 {
	var h uint64
	s.db.View(func(tx *bolt.Tx) error { h = schema.ScopeHorizon(tx, scope); return nil })
	return h
}

// raiseHorizon records that a remove entry at seq was dropped from scope;
// a horizon never goes down.
func raiseHorizon(tx *bolt.Tx, scope []byte, seq uint64) (bool, error) {
	if seq <= schema.OwnHorizon(tx, scope) {
		return false, nil
	}
	return true, tx.Bucket(schema.BucketHorizons).Put(scope, schema.U64(seq))
}

// CompactIndex compacts every scope index: it keeps the newest entry of each
// record per scope, and drops remove entries of changes received more than
// horizon ago, raising their scope's horizon as it does. It runs beside
// pushes and pulls; only one compaction runs at a time.
func (s *Store) CompactIndex(ctx context.Context, horizon time.Duration) (*CompactReport, error) {
	s.compacting.Lock()
	defer s.compacting.Unlock()
	rep := &CompactReport{}
	var scopes [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if horizon > 0 {
			rep.HorizonSeq = seqReceivedBefore(tx, s.now().Add(-horizon))
		}
		return tx.Bucket(schema.BucketIdx).ForEachBucket(func(k []byte) error {
			scopes = append(scopes, append([]byte(nil), k...))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	for _, scope := range scopes {
		if err := s.compactScope(ctx, scope, rep); err != nil {
			return rep, fmt.Errorf("compact %s: %w", scope, err)
		}
		rep.Scopes++
	}
	return rep, nil
}

// compactScope walks one scope index from its newest entry down. An entry
// older than its record's latest entry (latest.go) goes; a latest
// entry stays, unless it is a remove at or below the horizon. A record
// whose remove is dropped leaves no entry behind, and once the walk has
// deleted its older entries, its latest entry goes too.
func (s *Store) compactScope(ctx context.Context, scope []byte, rep *CompactReport) error {
	next := uint64(math.MaxUint64)
	scopeMoved := false
	// gone are the records whose latest entry, a remove, was dropped.
	var gone []deadEntry
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return err
		}
		var dead []deadEntry
		err := s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(schema.BucketIdx).Bucket(scope)
			if b == nil {
				done = true
				return nil
			}
			latest := latestOf(tx)
			c := b.Cursor()
			k, v := c.Seek(schema.U64(next))
			if k == nil {
				k, v = c.Last()
			} else if schema.Uint64(k) > next {
				k, v = c.Prev()
			}
			for n := 0; k != nil && n < compactReadChunk; k, v = c.Prev() {
				n++
				rep.Entries++
				kind, rec, ok := schema.ParseIndexValue(v)
				if !ok {
					continue
				}
				seq := schema.Uint64(k)
				switch {
				case superseded(latest, rec, scope, seq):
					// A newer entry of the record carries its state,
					// removes included: nothing is lost.
					dead = append(dead, deadEntry{Seq: seq})
				case kind == idxRemove && seq <= rep.HorizonSeq:
					dead = append(dead, deadEntry{Seq: seq, Rec: bytes.Clone(rec)})
				}
			}
			if k == nil {
				done = true
			} else {
				next = schema.Uint64(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for len(dead) > 0 {
			n := min(len(dead), compactWriteChunk)
			batch := dead[:n]
			dead = dead[n:]
			r, err := submit[compactResult](ctx, s, &compactCmd{Scope: scope, Dead: batch})
			if err != nil {
				return err
			}
			older, dropped, moved := r.Older, r.Dropped, r.Moved
			rep.Superseded += older
			rep.Tombstones += len(dropped)
			gone = append(gone, dropped...)
			if moved && !scopeMoved {
				scopeMoved = true
				rep.ScopesMoved++
			}
		}
	}
	return s.forgetGone(ctx, scope, gone)
}

// deadEntry is an index entry compaction deletes: its seq, and for a
// dropped remove its record (entity byte + id).
type deadEntry struct {
	Seq uint64 `json:"seq"`
	Rec []byte `json:"rec"`
}

// compactCmd deletes the Dead entries of Scope's index, as a compaction
// read them, and raises the scope's horizon over the removes it drops.
type compactCmd struct {
	Scope []byte      `json:"scope"`
	Dead  []deadEntry `json:"dead"`
}

// compactResult is what one compactCmd did: how many entries it deleted
// for being older than their record's latest, the removes it dropped, and
// whether it raised the scope's horizon.
type compactResult struct {
	Older   int
	Dropped []deadEntry
	Moved   bool
}

func (*compactCmd) kind() cmdKind { return cmdCompactDelete }

func (c *compactCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	var r compactResult
	b := tx.Bucket(schema.BucketIdx).Bucket(c.Scope)
	if b == nil {
		return r, nil
	}
	latest := latestOf(tx)
	var highest uint64
	for _, e := range c.Dead {
		if err := b.Delete(schema.U64(e.Seq)); err != nil {
			return nil, err
		}
		// A remove that a new entry of its record has superseded since
		// it was read needs no horizon: devices read the new entry.
		if e.Rec != nil && !superseded(latest, e.Rec, c.Scope, e.Seq) {
			r.Dropped = append(r.Dropped, e)
			highest = max(highest, e.Seq)
		} else {
			r.Older++
		}
	}
	// In the same transaction as the deletes: a pull never sees a
	// tombstone gone and its scope's horizon below it.
	var err error
	r.Moved, err = raiseHorizon(tx, c.Scope, highest)
	return r, err
}

// forgetGone deletes the latest entries of records whose remove compaction
// dropped from scope, once the walk has deleted all their older entries:
// the scope then holds nothing of them. A record that came back meanwhile
// has a newer latest entry, which stays. Were this skipped (a cancelled
// compaction), the stale latest entries would only take room: each points
// at or below the scope's horizon, and its record's older entries still
// count as superseded.
func (s *Store) forgetGone(ctx context.Context, scope []byte, gone []deadEntry) error {
	for len(gone) > 0 {
		n := min(len(gone), compactWriteChunk)
		batch := gone[:n]
		gone = gone[n:]
		if _, err := s.write(ctx, &forgetGoneCmd{Scope: scope, Gone: batch}); err != nil {
			return err
		}
	}
	return nil
}

// forgetGoneCmd forgets Scope's latest entries of the Gone records.
type forgetGoneCmd struct {
	Scope []byte      `json:"scope"`
	Gone  []deadEntry `json:"gone"`
}

func (*forgetGoneCmd) kind() cmdKind { return cmdForgetGone }

func (c *forgetGoneCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	latest, idx := latestOf(tx), tx.Bucket(schema.BucketIdx).Bucket(c.Scope)
	for _, e := range c.Gone {
		if l, ok := schema.LatestSeq(latest, e.Rec, c.Scope); !ok || l != e.Seq || (idx != nil && idx.Get(schema.U64(e.Seq)) != nil) {
			continue
		}
		rest := schema.WithoutLatest(latest.Get(e.Rec), c.Scope)
		var err error
		if len(rest) == 0 {
			err = latest.Delete(e.Rec)
		} else {
			err = latest.Put(e.Rec, rest)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// seqReceivedBefore is the newest log seq received before t (0: none). The
// log's received_at grows with its seq, so a binary search finds it.
func seqReceivedBefore(tx *bolt.Tx, t time.Time) uint64 {
	logs := tx.Bucket(schema.BucketLog)
	lo, hi := uint64(0), logs.Sequence()
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		e, err := decodeLogHead(logs.Get(schema.U64(mid)))
		if err == nil && e.ReceivedAt.Before(t) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
