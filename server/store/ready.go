package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// Ready reports whether the store can serve: it is not closed and a read
// transaction sees its buckets. It is cheap enough for a readiness probe.
func (s *Store) Ready() error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(schema.BucketMeta) == nil {
			return errors.New("the store has no meta bucket")
		}
		return nil
	})
}
