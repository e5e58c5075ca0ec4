package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
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
// Bucket latest holds one key per record (entity byte + id), whose value
// lists the seq of the record's latest entry in each scope that holds one:
// repeated [scope length (1 byte)][scope][seq (8 bytes, big-endian)]. One
// key per record, not per scope and record, because a change writes the
// same seq into all of its record's scopes (a warning's five or so): one
// value to rewrite costs one page of the file per change, where a key per
// scope cost five, each somewhere else in the file.

// latestSeq is the seq of rec's latest entry in scope; ok is false when
// none is recorded.
func latestSeq(lb *bolt.Bucket, rec, scope []byte) (seq uint64, ok bool) {
	if lb == nil {
		return 0, false
	}
	forEachLatest(lb.Get(rec), func(s []byte, q uint64) bool {
		if string(s) == string(scope) {
			seq, ok = q, true
			return false
		}
		return true
	})
	return seq, ok
}

// superseded reports whether the index entry at seq of rec in scope has a
// newer entry of the same record in that scope. An entry with no latest
// recorded, or one newer than it (neither happens in a consistent store),
// counts as the latest: a record is sent rather than lost.
func superseded(lb *bolt.Bucket, rec, scope []byte, seq uint64) bool {
	l, ok := latestSeq(lb, rec, scope)
	return ok && l > seq
}

// forEachLatest calls fn with each scope and seq of a latest value until fn
// returns false. A value cut short ends the walk.
func forEachLatest(v []byte, fn func(scope []byte, seq uint64) bool) {
	for len(v) > 0 {
		n := int(v[0])
		if len(v) < 1+n+8 {
			return
		}
		if !fn(v[1:1+n], binary.BigEndian.Uint64(v[1+n:])) {
			return
		}
		v = v[1+n+8:]
	}
}

// withLatest is the latest value v with each of scopes at seq.
func withLatest(v []byte, scopes []string, seq uint64) []byte {
	out := make([]byte, 0, len(v)+len(scopes)*(1+len("unit/")+12+8))
	forEachLatest(v, func(s []byte, q uint64) bool {
		if !slices.Contains(scopes, string(s)) {
			out = appendLatest(out, s, q)
		}
		return true
	})
	for _, s := range scopes {
		out = appendLatest(out, []byte(s), seq)
	}
	return out
}

// withoutLatest is the latest value v without scope.
func withoutLatest(v, scope []byte) []byte {
	out := make([]byte, 0, len(v))
	forEachLatest(v, func(s []byte, q uint64) bool {
		if string(s) != string(scope) {
			out = appendLatest(out, s, q)
		}
		return true
	})
	return out
}

func appendLatest(out, scope []byte, seq uint64) []byte {
	out = append(out, byte(len(scope)))
	out = append(out, scope...)
	return binary.BigEndian.AppendUint64(out, seq)
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
	b := tx.Bucket(bucketLatest)
	return b.Put(rec, withLatest(b.Get(rec), scopes, seq))
}
