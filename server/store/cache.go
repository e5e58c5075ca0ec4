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
// reader may offer states it read (warm), taken only when no write
// transaction has been merged since its snapshot.
type warningCache struct {
	mu sync.RWMutex
	// txid is the id of the last write transaction merged.
	txid    int
	entries map[string]*syncproto.Warning
	max     int
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
}

// offer adds states read in a snapshot of txid, if the cache is still at
// that snapshot: a write transaction merged since may have changed them.
// A write transaction committed but not yet merged is newer than txid,
// and merges its states over these. Room is made by forgetting entries
// at random, as merge does.
func (c *warningCache) offer(states map[string]*syncproto.Warning, txid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.txid != txid {
		return
	}
	for id, w := range states {
		if _, ok := c.entries[id]; ok {
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

// missing lists the ids the cache holds no state of.
func (c *warningCache) missing(ids []string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for _, id := range ids {
		if _, ok := c.entries[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// warm reads, in a read transaction of its own, the states of the
// warnings ids the cache lacks, and offers them to it. Called before a
// push goes to the writer, it moves reading and decoding those states
// (some 8 µs a warning) from the single writer to the request's
// goroutine, which runs beside it.
func (s *Store) warm(ids []string) {
	ids = s.cache.missing(ids)
	if len(ids) == 0 {
		return
	}
	states := make(map[string]*syncproto.Warning, len(ids))
	txid := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		txid = tx.ID()
		for _, id := range ids {
			w, err := readWarning(tx, id)
			if err != nil {
				return err
			}
			if w != nil {
				states[id] = w
			}
		}
		return nil
	})
	// A state that does not read is the writer's to report, as it
	// would be without this.
	if err == nil {
		s.cache.offer(states, txid)
	}
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
}
