package schema

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// ScopeHorizon is the highest seq of a remove entry dropped from scope's
// index, or the schema-2 global horizon if that is higher: a cursor of
// scope below it resets.
func ScopeHorizon(tx *bolt.Tx, scope string) uint64 {
	return max(OwnHorizon(tx, []byte(scope)), LegacyHorizon(tx))
}

// OwnHorizon is the horizon recorded for scope itself.
func OwnHorizon(tx *bolt.Tx, scope []byte) uint64 {
	if b := tx.Bucket(BucketHorizons); b != nil {
		if v := b.Get(scope); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
	}
	return 0
}

// LegacyHorizon is the global horizon a schema-2 compaction left (0: none).
func LegacyHorizon(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(BucketMeta).Get(KeyTombstoneHorizon); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
