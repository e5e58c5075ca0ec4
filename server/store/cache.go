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
// again at the next change). Only the writer adds entries.
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
