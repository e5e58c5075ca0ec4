package schema

import (
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A record's latest value lists the seq of the record's latest entry in
// each scope that holds one: repeated [scope length (1 byte)][scope][seq
// (8 bytes, big-endian)]. A record is named by its entity byte and id
// (rec). A warning's value lies beside its state in bucket warnings,
// under WarningLatestKey (schema 8 on); any other record's in bucket
// latest under rec, as every record's did before schema 8.

// RecWarning is the entity byte of a warning's rec.
const RecWarning byte = 'w'

// Latest reads and writes the records' latest values where the layout
// keeps them. Its zero value holds nothing.
type Latest struct {
	// Others is bucket latest; Warnings is bucket warnings from schema
	// 8 on, nil in an older layout (a warning's value is then in Others).
	Others, Warnings *bolt.Bucket
}

// LatestOf is the latest values tx sees, in the layout the store's
// schema version says.
func LatestOf(tx *bolt.Tx) Latest {
	l := Latest{Others: tx.Bucket(BucketLatest)}
	if VersionOf(tx) >= 8 {
		l.Warnings = tx.Bucket(BucketWarnings)
	}
	return l
}

// key is where rec's value lies, and its bucket.
func (l Latest) key(rec []byte) (*bolt.Bucket, []byte) {
	if l.Warnings != nil && len(rec) > 0 && rec[0] == RecWarning {
		return l.Warnings, WarningLatestKey(rec[1:])
	}
	return l.Others, rec
}

// Get is rec's latest value; nil when it has none.
func (l Latest) Get(rec []byte) []byte {
	b, k := l.key(rec)
	if b == nil {
		return nil
	}
	return b.Get(k)
}

// Put makes v rec's latest value.
func (l Latest) Put(rec, v []byte) error {
	b, k := l.key(rec)
	return b.Put(k, v)
}

// Delete forgets rec's latest value.
func (l Latest) Delete(rec []byte) error {
	b, k := l.key(rec)
	return b.Delete(k)
}

// LatestSeq is the seq of rec's latest entry in scope; ok is false when
// none is recorded.
func LatestSeq(l Latest, rec, scope []byte) (seq uint64, ok bool) {
	ForEachLatest(l.Get(rec), func(s []byte, q uint64) bool {
		if string(s) == string(scope) {
			seq, ok = q, true
			return false
		}
		return true
	})
	return seq, ok
}

// ForEachLatest calls fn with each scope and seq of a latest value until fn
// returns false. A value cut short ends the walk.
func ForEachLatest(v []byte, fn func(scope []byte, seq uint64) bool) {
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

// WithLatest is the latest value v with each of scopes at seq. A scope
// name must fit its length byte (255 bytes at most).
func WithLatest(v []byte, scopes []string, seq uint64) []byte {
	out := make([]byte, 0, len(v)+len(scopes)*(1+len("unit/")+12+8))
	ForEachLatest(v, func(s []byte, q uint64) bool {
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

// WithoutLatest is the latest value v without scope.
func WithoutLatest(v, scope []byte) []byte {
	out := make([]byte, 0, len(v))
	ForEachLatest(v, func(s []byte, q uint64) bool {
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
