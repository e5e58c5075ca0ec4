package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// warningCache keeps decoded warning states, so the writer does not decode
// the state of every warning it changes, nor a pull each state it sends.
// Entries are committed states and never changed in place.
//
// Readers must never see a state older than their transaction's snapshot:
// the writer merges a batch's states only after its commit, and records the
// id of that transaction; a reader uses the cache only when it is at least
// as new as its snapshot (a newer state is harmless: the device gets it
// again at the next change). The writer adds the states it commits; a
// reader may offer states it read (warm), taken only for warnings no write
// transaction merged since its snapshot has changed.
type warningCache struct {
	mu sync.RWMutex
	// txid is the id of the last write transaction merged.
	txid    int
	entries map[string]*syncproto.Warning
	max     int
	// recent holds the ids each of the last merges changed, in a ring
	// by txid (merges come one per committed write transaction, so
	// their txids follow each other): an offer from a snapshot a few
	// commits old is taken for the warnings none of them changed. Under
	// load a commit lands while a push warms its states, and an offer
	// taken only at the cache's own snapshot was refused about half the
	// time, leaving the single writer to read and decode those states.
	recent [recentMerges]mergedIDs
}

// recentMerges is how many merges back an offer may have been read: a
// warm read takes well under a commit or two.
const recentMerges = 32

// mergedIDs are the ids merge txid changed; txid 0 marks an empty slot.
type mergedIDs struct {
	txid int
	ids  map[string]struct{}
}

func newWarningCache(max int) *warningCache {
	return &warningCache{entries: make(map[string]*syncproto.Warning), max: max}
}

// get returns a cached state a reader with snapshot txid may use.
func (c *warningCache) get(id string, txid int) *syncproto.Warning {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.txid < txid {
		return nil
	}
	return c.entries[id]
}

// merge adds states committed by write transaction txid.
func (c *warningCache) merge(states map[string]*syncproto.Warning, txid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries)+len(states) > c.max {
		// Forget at random (map order) down to three quarters of what is
		// left for the old entries: a miss only costs a decode.
		keep := max(c.max-len(states), 0) * 3 / 4
		for k := range c.entries {
			if len(c.entries) <= keep {
				break
			}
			delete(c.entries, k)
		}
	}
	for id, w := range states {
		if len(c.entries) >= c.max {
			// A batch larger than the cache (a big import) keeps only
			// what fits.
			delete(c.entries, id)
			continue
		}
		c.entries[id] = w
	}
	c.txid = txid
	slot := &c.recent[txid%recentMerges]
	if slot.ids == nil {
		slot.ids = make(map[string]struct{}, len(states))
	}
	clear(slot.ids)
	for id := range states {
		slot.ids[id] = struct{}{}
	}
	slot.txid = txid
}

// unchangedSince reports whether every merge after txid up to the cache's
// is in recent and none of them changed warning id.
func (c *warningCache) unchangedSince(id string, txid int) bool {
	if c.txid-txid >= recentMerges {
		return false
	}
	for t := txid + 1; t <= c.txid; t++ {
		slot := &c.recent[t%recentMerges]
		if slot.txid != t {
			return false
		}
		if _, changed := slot.ids[id]; changed {
			return false
		}
	}
	return true
}

// offer adds states read in a snapshot of txid, those of warnings no write
// transaction merged since has changed (unchangedSince): the others may be
// older than what was committed. A write transaction committed but not
// yet merged is newer than txid, and merges its states over these. Room
// is made by forgetting entries at random, as merge does.
func (c *warningCache) offer(states map[string]*syncproto.Warning, txid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if txid > c.txid {
		return
	}
	for id, w := range states {
		if _, ok := c.entries[id]; ok || !c.unchangedSince(id, txid) {
			continue
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
		c.entries[id] = w
	}
}

// split returns the states the cache holds of ids, the ids it holds none
// of, and the last transaction merged, after which those states are.
func (c *warningCache) split(ids []string) (held map[string]*syncproto.Warning, missing []string, txid int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	held = make(map[string]*syncproto.Warning, len(ids))
	for _, id := range ids {
		if w, ok := c.entries[id]; ok {
			held[id] = w
		} else {
			missing = append(missing, id)
		}
	}
	return held, missing, c.txid
}

// fresh reports whether a state of warning id after transaction txid is
// still its state after the last merge: no merge since changed it.
func (c *warningCache) fresh(id string, txid int) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return txid <= c.txid && c.unchangedSince(id, txid)
}

// warmedStates are the states of a push's warnings as they were after
// write transaction txid: read from the cache, or from the file in a
// snapshot at least that new.
type warmedStates struct {
	states map[string]*syncproto.Warning
	txid   int
}

// warm reads, in a read transaction of its own, the states of the
// warnings ids the cache lacks, and offers them to it; it returns them
// with those the cache held, for the push to carry to the writer. Called
// before a push goes to the writer, it moves reading and decoding those
// states (some 8 µs a warning) from the single writer to the request's
// goroutine, which runs beside it. The push carries them because the
// cache alone does not keep them for it: under load the writer's merges
// can push them out of the cache before the push is applied.
func (s *Store) warm(ids []string) *warmedStates {
	held, ids, txid := s.cache.split(ids)
	w := &warmedStates{states: held, txid: txid}
	if len(ids) == 0 {
		return w
	}
	read := make(map[string]*syncproto.Warning, len(ids))
	snapshot := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		snapshot = tx.ID()
		for _, id := range ids {
			st, err := readWarning(tx, id)
			if err != nil {
				return err
			}
			if st != nil {
				read[id] = st
			}
		}
		return nil
	})
	// A state that does not read is the writer's to report, as it
	// would be without this.
	if err != nil {
		return w
	}
	s.cache.offer(read, snapshot)
	// The snapshot is at least as new as the cache was at split: a state
	// read in it is also a state after txid, unless a transaction after
	// txid changed it, which fresh then refuses.
	for id, st := range read {
		w.states[id] = st
	}
	return w
}

// warmedState returns the state of warning id the push being applied
// carries, if no transaction since it was read has changed it; the
// writer's own batch and the cache come first (loadWarning).
func (s *Store) warmedState(id string) *syncproto.Warning {
	if s.warmed == nil {
		return nil
	}
	w := s.warmed.states[id]
	if w == nil || !s.cache.fresh(id, s.warmed.txid) {
		return nil
	}
	return w
}

// loadWarning returns a warning's state as tx sees it: the writer's own
// uncommitted states first, then the cache, then the file.
func (s *Store) loadWarning(tx *bolt.Tx, id string) (*syncproto.Warning, error) {
	if tx.Writable() {
		if w, ok := s.batch[id]; ok {
			return w, nil
		}
		// The writer's transaction sees every committed state.
		if w := s.cache.get(id, tx.ID()-1); w != nil {
			return w, nil
		}
		if w := s.warmedState(id); w != nil {
			s.batch[id] = w
			return w, nil
		}
		w, err := readWarning(tx, id)
		if w != nil {
			// Committed, and read by the only writer: safe to remember.
			s.batch[id] = w
		}
		return w, err
	}
	if w := s.cache.get(id, tx.ID()); w != nil {
		return w, nil
	}
	return readWarning(tx, id)
}

// reset forgets every state: the store's whole state was replaced by write
// transaction txid (InstallSnapshot).
func (c *warningCache) reset(txid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.txid = txid
	// Nothing read before the replacement may come in.
	for i := range c.recent {
		c.recent[i].txid = 0
	}
}
