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
// Each record has one latest value, which lists the seq of the record's
// latest entry in each scope that holds one (the encoding is in
// schema/latest.go): a warning's beside its state in bucket warnings
// (schema 8), a unit's or a user's in bucket latest. One value per record,
// not per scope and record, because a change writes the same seq into all
// of its record's scopes (a warning's five or so): one value to rewrite
// costs one page of the file per change, where a key per scope cost five,
// each somewhere else in the file; and a warning's lies on the page its
// state and history entry were written to anyway.

// superseded reports whether the index entry at seq of rec in scope has a
// newer entry of the same record in that scope. An entry with no latest
// recorded, or one newer than it (neither happens in a consistent store),
// counts as the latest: a record is sent rather than lost.
func superseded(latest schema.Latest, rec, scope []byte, seq uint64) bool {
	l, ok := schema.LatestSeq(latest, rec, scope)
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
	latest := latestOf(tx)
	return latest.Put(rec, schema.WithLatest(latest.Get(rec), scopes, seq))
}
