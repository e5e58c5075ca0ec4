package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"
	"slices"

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

// addHistory records that the log entry at seq concerns warning id, in
// its history record (schema 16 on).
func addHistory(tx *bolt.Tx, id string, seq uint64) error {
	b := tx.Bucket(schema.BucketWarnings)
	k := schema.WarningHistoryRecordKey(id)
	v, err := schema.AppendHistory(b.Get(k), seq)
	if err != nil {
		return fmt.Errorf("warning %s: %w", id, err)
	}
	return b.Put(k, v)
}

// historySeqs lists the seqs of the log entries of warning id, oldest
// first: those of its history record and those written, up to schema 15,
// under keys of their own.
func historySeqs(tx *bolt.Tx, id string) ([]uint64, error) {
	var seqs []uint64
	for rest, v := range subRecords(tx, id, schema.TagHistory) {
		switch len(rest) {
		case 0:
			rec, err := schema.ParseHistory(v)
			if err != nil {
				return nil, fmt.Errorf("warning %s: %w", id, err)
			}
			seqs = append(seqs, rec...)
		case 8:
			seqs = append(seqs, binary.BigEndian.Uint64(rest))
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// latestOf is the records' latest values: a warning's beside its state,
// a unit's or a user's in bucket latest. The writer and the readers run
// only on a store at the current schema, so no version is read.
func latestOf(tx *bolt.Tx) schema.Latest {
	return schema.Latest{Others: tx.Bucket(schema.BucketLatest), Warnings: tx.Bucket(schema.BucketWarnings)}
}
