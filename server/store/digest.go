package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// Digest is the SHA-256 of the store's whole state as one read
// transaction sees it: every bucket, nested bucket, key, value and
// sequence, in key order. Two nodes of a cluster that applied the same
// entries have the same digest (docs/CLUSTER.md); the cluster's tests and
// `fieldsyncd cluster status` compare them.
func (s *Store) Digest() (string, error) {
	return s.digest(nil)
}

// StateDigest is Digest without meta "applied_index", which counts the
// commits of one server or the entries of a cluster's raft log: a single
// server's store and a cluster restored from its backup have the same
// (docs/CLUSTER.md).
func (s *Store) StateDigest() (string, error) {
	return s.digest(func(bucket, key []byte) bool {
		return bytes.Equal(bucket, schema.BucketMeta) && bytes.Equal(key, schema.KeyAppliedIndex)
	})
}

// digest hashes the state, leaving out the top-level keys skip names.
func (s *Store) digest(skip func(bucket, key []byte) bool) (string, error) {
	h := sha256.New()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			writeField(h, name)
			if skip == nil {
				return digestBucket(h, b, nil)
			}
			return digestBucket(h, b, func(key []byte) bool { return skip(name, key) })
		})
	})
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func digestBucket(h hash.Hash, b *bolt.Bucket, skip func(key []byte) bool) error {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], b.Sequence())
	writeField(h, seq[:])
	return b.ForEach(func(k, v []byte) error {
		if skip != nil && skip(k) {
			return nil
		}
		writeField(h, k)
		if v == nil {
			h.Write([]byte{'{'})
			if err := digestBucket(h, b.Bucket(k), nil); err != nil {
				return err
			}
			h.Write([]byte{'}'})
			return nil
		}
		writeField(h, v)
		return nil
	})
}

// writeField writes b with its length, so no two layouts hash alike.
func writeField(h hash.Hash, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	h.Write(n[:])
	h.Write(b)
}
