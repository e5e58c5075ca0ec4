package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// BucketSize is what one top-level bucket holds, nested buckets included.
type BucketSize struct {
	// Entries counts the key/value pairs (a nested bucket is not one; the
	// pairs inside it are).
	Entries int64
	// Bytes is the sum of the lengths of their keys and values, plus the
	// names of the nested buckets: what the bucket stores, before bbolt's
	// page headers, free space and rewrites.
	Bytes int64
	// Pages is the bytes of the pages the bucket occupies (leaves and
	// branches, nested buckets' included), PagesUsed what of them its
	// elements and page headers fill: PagesUsed/Pages is how full bbolt
	// keeps the bucket's pages (schema.SetFill).
	Pages, PagesUsed int64
}

// BucketSizes walks every bucket in one read transaction and returns what
// each top-level bucket holds, by name: for load tools that measure what
// an op costs the store, bucket by bucket. It reads every key of the file,
// so it takes seconds on a large store; ErrClosed once the store is
// closed.
func (s *Store) BucketSizes() (map[string]BucketSize, error) {
	sizes := map[string]BucketSize{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			var size BucketSize
			addBucketSize(b, &size)
			st := b.Stats()
			size.Pages = int64(st.LeafAlloc + st.BranchAlloc)
			size.PagesUsed = int64(st.LeafInuse + st.BranchInuse)
			sizes[string(name)] = size
			return nil
		})
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("read bucket sizes: %w", err)
	}
	return sizes, nil
}

// addBucketSize adds b's pairs, and those of the buckets nested in it, to
// size.
func addBucketSize(b *bolt.Bucket, size *BucketSize) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		size.Bytes += int64(len(k))
		if v == nil { // a nested bucket
			if nested := b.Bucket(k); nested != nil {
				addBucketSize(nested, size)
				continue
			}
		}
		size.Entries++
		size.Bytes += int64(len(v))
	}
}
