package store

import (
	"bytes"
	"encoding/binary"
	"iter"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// A warning's records lie side by side in bucket warnings (schema 8,
// schema/warnings.go): its state under its id, then its attempts, its
// history and its latest entries under the id, 0x00 and a tag. Whatever
// reads or writes them goes through the helpers here, so a walk of the
// states never meets a sub-record and no key is built twice.

// warningStates yields the states of bucket warnings by id, from the first
// id at or after from (nil: the first); see schema.WarningStates.
func warningStates(tx *bolt.Tx, from []byte) iter.Seq2[[]byte, []byte] {
	return schema.WarningStates(tx.Bucket(schema.BucketWarnings), from)
}

// subRecords yields the sub-records of warning id with tag, in key order,
// as what follows the tag (an ordinal, a seq) and the value. The same
// rules as warningStates': copy what is kept, write after the loop.
func subRecords(tx *bolt.Tx, id string, tag byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(rest, v []byte) bool) {
		prefix := schema.WarningSubKey([]byte(id), tag)
		c := tx.Bucket(schema.BucketWarnings).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if !yield(k[len(prefix):], v) {
				return
			}
		}
	}
}

// addHistory records that the log entry at seq concerns warning id.
func addHistory(tx *bolt.Tx, id string, seq uint64) error {
	return tx.Bucket(schema.BucketWarnings).Put(schema.WarningHistoryKey(id, seq), nil)
}

// historySeqs lists the seqs of the log entries of warning id, oldest
// first.
func historySeqs(tx *bolt.Tx, id string) []uint64 {
	var seqs []uint64
	for rest := range subRecords(tx, id, schema.TagHistory) {
		if len(rest) == 8 {
			seqs = append(seqs, binary.BigEndian.Uint64(rest))
		}
	}
	return seqs
}

// latestOf is the records' latest values: a warning's beside its state,
// a unit's or a user's in bucket latest. The writer and the readers run
// only on a store at the current schema, so no version is read.
func latestOf(tx *bolt.Tx) schema.Latest {
	return schema.Latest{Others: tx.Bucket(schema.BucketLatest), Warnings: tx.Bucket(schema.BucketWarnings)}
}
