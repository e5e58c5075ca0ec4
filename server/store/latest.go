package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// Latest entries. A pull sends a record only from its latest entry in the
// device's scope, and passes over its older ones: a record changed many
// times since a cursor reaches the device once, with its current state,
// however many pages the pull takes. Neither a warning's version (a
// photo's arrival writes index entries without a new version) nor its
// history (which holds log entries that wrote no index entry) says which
// entry is the latest, so the store records it as it writes the entries
// (indexMove).
//
// Bucket latest holds one key per record, whose value lists the seq of the
// record's latest entry in each scope that holds one (the encoding is in
// schema/latest.go). One key per record, not per scope and record, because
// a change writes the same seq into all of its record's scopes (a
// warning's five or so): one value to rewrite costs one page of the file
// per change, where a key per scope cost five, each somewhere else in the
// file.

// superseded reports whether the index entry at seq of rec in scope has a
// newer entry of the same record in that scope. An entry with no latest
// recorded, or one newer than it (neither happens in a consistent store),
// counts as the latest: a record is sent rather than lost.
func superseded(lb *bolt.Bucket, rec, scope []byte, seq uint64) bool {
	l, ok := schema.LatestSeq(lb, rec, scope)
	return ok && l > seq
}

// setLatest records seq as rec's latest entry in each of scopes.
func setLatest(tx *bolt.Tx, rec []byte, seq uint64, scopes []string) error {
	if len(scopes) == 0 {
		return nil
	}
	for _, s := range scopes {
		if len(s) > 255 {
			return fmt.Errorf("scope name %.20q... is longer than 255 bytes", s)
		}
	}
	b := tx.Bucket(schema.BucketLatest)
	return b.Put(rec, schema.WithLatest(b.Get(rec), scopes, seq))
}
