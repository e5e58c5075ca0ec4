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
// remove entries (tombstones) older than a horizon: a device whose cursor is
// older than the horizon could miss such a remove, so its next pull is a
// reset instead (see Pull), and it rebuilds its copy from the current state.
//
// It runs online. Deleting an entry older than another entry of the same
// record is safe at any moment (a device that had not read the old one will
// read the newer one, which carries the current state), so the reading runs
// in short read transactions and the deletes go through the writer in small
// batches between pushes. The horizon is committed to meta before the first
// tombstone goes.

// DefaultTombstoneHorizon is how long a device may stay away and still
// carry on from its cursor after a compaction: as long as a refresh token
// lives, so a phone that must sign in again anyway is the one that resets.
const DefaultTombstoneHorizon = 30 * 24 * time.Hour

// MinTombstoneHorizon keeps a mistyped setting from resetting every phone
// that did not sync today.
const MinTombstoneHorizon = 24 * time.Hour

// keyTombstoneHorizon is the log seq at or below which remove entries may
// have been dropped: a cursor below it resets.
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
	// HorizonSeq is the log seq at or below which tombstones are gone; a
	// cursor below it resets.
	HorizonSeq uint64
}

// TombstoneHorizon is the seq below which cursors reset (0: never
// compacted).
func (s *Store) TombstoneHorizon() uint64 {
	var h uint64
	s.db.View(func(tx *bolt.Tx) error { h = tombstoneHorizon(tx); return nil })
	return h
}

func tombstoneHorizon(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyTombstoneHorizon); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// CompactIndex compacts every scope index: it keeps the newest entry of each
// record per scope, and drops remove entries of changes received more than
// horizon ago. It runs beside pushes and pulls; only one compaction runs at
// a time.
func (s *Store) CompactIndex(ctx context.Context, horizon time.Duration) (*CompactReport, error) {
	s.compacting.Lock()
	defer s.compacting.Unlock()
	rep := &CompactReport{}
	var scopes [][]byte
	var stored uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		stored = tombstoneHorizon(tx)
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
	// The horizon never goes back: tombstones below the stored one may
	// already be gone.
	if rep.HorizonSeq > stored {
		err := s.write(ctx, func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if tombstoneHorizon(tx) >= rep.HorizonSeq {
				return nil
			}
			return meta.Put(keyTombstoneHorizon, u64(rep.HorizonSeq))
		})
		if err != nil {
			return nil, fmt.Errorf("compact: record the horizon: %w", err)
		}
	} else {
		rep.HorizonSeq = stored
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
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return err
		}
		var dead [][]byte
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
				switch {
				case !seen.add(v[1], v[2:]):
					rep.Superseded++
				case v[0] == idxRemove && bigEndian(k) <= rep.HorizonSeq:
					rep.Tombstones++
				default:
					continue
				}
				dead = append(dead, append([]byte(nil), k...))
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
			batch := dead[:n]
			dead = dead[n:]
			err := s.write(ctx, func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketIdx).Bucket(scope)
				if b == nil {
					return nil
				}
				for _, k := range batch {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
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
