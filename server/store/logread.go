package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// EachLogEntry calls fn with every entry of the log, oldest first, in one
// read transaction: for tools and tests that audit what the store holds.
// fn's error stops the walk and is returned.
func (s *Store) EachLogEntry(fn func(seq uint64, e *LogEntry) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return eachLogEntry(tx, fn) })
}

// ReadLogFile is EachLogEntry on the store file at path, opened read-only:
// for a store no server has open.
func ReadLogFile(path string, fn func(seq uint64, e *LogEntry) error) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return eachLogEntry(tx, fn) })
}

func eachLogEntry(tx *bolt.Tx, fn func(seq uint64, e *LogEntry) error) error {
	return tx.Bucket(schema.BucketLog).ForEach(func(k, v []byte) error {
		var e LogEntry
		if err := DecodeLogEntry(v, &e); err != nil {
			return fmt.Errorf("log entry %d: %w", schema.Uint64(k), err)
		}
		return fn(schema.Uint64(k), &e)
	})
}
