package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index compaction. A scope index holds an entry per change of a record in
// that scope, and a pull collapses them into the record's current state:
// every entry of a record but its newest is dead weight, read by every
// device that pulls from before it. Compaction deletes those, and drops the
// remove entries (tombstones) older than a time horizon. A device whose
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

// keyTombstoneHorizon is the one horizon of every scope that schema-2
// fieldsyncd kept: a log seq at or below which it may have dropped remove
// entries from any scope. This code never writes it; it reads it as the
// floor of every scope's horizon, since it cannot tell which scopes those
// drops were in.
var keyTombstoneHorizon = []byte("tombstone_horizon")

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
	s.db.View(func(tx *bolt.Tx) error { h = scopeHorizon(tx, scope); return nil })
	return h
}

// scopeHorizon is the highest seq of a remove entry dropped from scope's
// index, or the schema-2 global horizon if that is higher.
func scopeHorizon(tx *bolt.Tx, scope string) uint64 {
	return max(ownHorizon(tx, []byte(scope)), legacyHorizon(tx))
}

// ownHorizon is the horizon recorded for scope itself.
func ownHorizon(tx *bolt.Tx, scope []byte) uint64 {
	if b := tx.Bucket(bucketHorizons); b != nil {
		if v := b.Get(scope); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
	}
	return 0
}

// legacyHorizon is the global horizon a schema-2 compaction left (0: none).
func legacyHorizon(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyTombstoneHorizon); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// raiseHorizon records that a remove entry at seq was dropped from scope;
// a horizon never goes down.
func raiseHorizon(tx *bolt.Tx, scope []byte, seq uint64) (bool, error) {
	if seq <= ownHorizon(tx, scope) {
		return false, nil
	}
	return true, tx.Bucket(bucketHorizons).Put(scope, u64(seq))
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
		return tx.Bucket(bucketIdx).ForEachBucket(func(k []byte) error {
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

// compactScope walks one scope index from its newest entry down. The first
// entry met for a record is its newest: it stays, unless it is a remove at
// or below the horizon; every later (older) one goes.
func (s *Store) compactScope(ctx context.Context, scope []byte, rep *CompactReport) error {
	seen := newRecordSet()
	next := uint64(math.MaxUint64)
	scopeMoved := false
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// dead are the keys to delete; tombstone marks those that are
		// dropped removes, which move the scope's horizon.
		var dead [][]byte
		var tombstone []bool
		err := s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketIdx).Bucket(scope)
			if b == nil {
				done = true
				return nil
			}
			c := b.Cursor()
			k, v := c.Seek(u64(next))
			if k == nil {
				k, v = c.Last()
			} else if bigEndian(k) > next {
				k, v = c.Prev()
			}
			for n := 0; k != nil && n < compactReadChunk; k, v = c.Prev() {
				n++
				rep.Entries++
				if len(v) < 2 {
					continue
				}
				drop := false
				switch {
				case !seen.add(v[1], v[2:]):
					// A newer entry of the record carries its state,
					// removes included: nothing is lost.
				case v[0] == idxRemove && bigEndian(k) <= rep.HorizonSeq:
					drop = true
				default:
					continue
				}
				dead = append(dead, append([]byte(nil), k...))
				tombstone = append(tombstone, drop)
			}
			if k == nil {
				done = true
			} else {
				next = bigEndian(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for len(dead) > 0 {
			n := min(len(dead), compactWriteChunk)
			batch, drops := dead[:n], tombstone[:n]
			dead, tombstone = dead[n:], tombstone[n:]
			var superseded, dropped int
			moved := false
			err := s.write(ctx, func(tx *bolt.Tx) error {
				superseded, dropped, moved = 0, 0, false
				b := tx.Bucket(bucketIdx).Bucket(scope)
				if b == nil {
					return nil
				}
				var highest uint64
				for i, k := range batch {
					if err := b.Delete(k); err != nil {
						return err
					}
					if drops[i] {
						dropped++
						highest = max(highest, bigEndian(k))
					} else {
						superseded++
					}
				}
				// In the same transaction as the deletes: a pull
				// never sees a tombstone gone and its scope's horizon
				// below it.
				var err error
				moved, err = raiseHorizon(tx, scope, highest)
				return err
			})
			if err != nil {
				return err
			}
			rep.Superseded += superseded
			rep.Tombstones += dropped
			if moved && !scopeMoved {
				scopeMoved = true
				rep.ScopesMoved++
			}
		}
	}
	return nil
}

// seqReceivedBefore is the newest log seq received before t (0: none). The
// log's received_at grows with its seq, so a binary search finds it.
func seqReceivedBefore(tx *bolt.Tx, t time.Time) uint64 {
	logs := tx.Bucket(bucketLog)
	lo, hi := uint64(0), logs.Sequence()
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		var e struct {
			ReceivedAt time.Time `json:"received_at"`
		}
		v := logs.Get(u64(mid))
		if v != nil && decode(v, &e) == nil && e.ReceivedAt.Before(t) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// recordSet remembers which records a scope walk has met. The root unit's
// scope holds every warning of a city: ids that are UUIDs are kept as 17
// bytes, not as strings, to keep a million of them small.
type recordSet struct {
	uuids map[[17]byte]struct{}
	other map[string]struct{}
}

func newRecordSet() *recordSet {
	return &recordSet{uuids: map[[17]byte]struct{}{}, other: map[string]struct{}{}}
}

// add records (entity, id) and reports whether it was new.
func (r *recordSet) add(entity byte, id []byte) bool {
	if key, ok := uuidKey(entity, id); ok {
		if _, seen := r.uuids[key]; seen {
			return false
		}
		r.uuids[key] = struct{}{}
		return true
	}
	key := string(entity) + string(id)
	if _, seen := r.other[key]; seen {
		return false
	}
	r.other[key] = struct{}{}
	return true
}

// uuidKey packs an entity and a canonical lowercase UUID into 17 bytes.
func uuidKey(entity byte, id []byte) (key [17]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return key, false
	}
	key[0] = entity
	var hexDigits [32]byte
	n := 0
	for i, c := range id {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		// Upper case would decode to the same bytes as another id's
		// lower case: such ids (never made here) take the string path.
		if c >= 'A' && c <= 'F' {
			return key, false
		}
		hexDigits[n] = c
		n++
	}
	if _, err := hex.Decode(key[1:], hexDigits[:]); err != nil {
		return key, false
	}
	return key, true
}
