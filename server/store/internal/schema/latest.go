package schema

import (
	"bytes"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A record's latest value lists the seq of the record's latest entry in
// each scope that holds one. A record is named by its entity byte and id
// (rec). A warning's value lies beside its state in bucket warnings,
// under WarningLatestKey (schema 8 on); any other record's in bucket
// latest under rec, as every record's did before schema 8.
//
// Up to schema 15 a value was repeated [scope length (1 byte)][scope][seq
// (8 bytes, big-endian)]: some 100 bytes a warning, half of them a user
// scope's "user/" and 36-character id. From schema 16 a value is written
// compactly: latestCompact, then repeated [scope][seq as a uvarint], the
// scope as latestUser and a user id's 16 bytes, latestUnit, a length byte
// and a unit code, or latestOther, a length byte and the name. A value of
// the older form starts with its first scope's length, never 0, and is
// read as it is until its record changes.
const (
	latestCompact byte = 0
	latestUser    byte = 1
	latestUnit    byte = 2
	latestOther   byte = 3
)

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

// ForEachLatest calls fn with each scope and seq of a latest value, in
// either form, until fn returns false; scope is valid only during the
// call. It reports whether the value read as a whole list: false when it
// was cut short or is not one (the walk then ends there).
func ForEachLatest(v []byte, fn func(scope []byte, seq uint64) bool) (whole bool) {
	if len(v) == 0 || v[0] != latestCompact {
		for len(v) > 0 {
			n := int(v[0])
			if len(v) < 1+n+8 {
				return false
			}
			if !fn(v[1:1+n], binary.BigEndian.Uint64(v[1+n:])) {
				return true
			}
			v = v[1+n+8:]
		}
		return true
	}
	var buf [64]byte
	for v = v[1:]; len(v) > 0; {
		scope := buf[:0]
		switch tag := v[0]; {
		case tag == latestUser && len(v) >= 1+16:
			scope = appendUUID(append(scope, "user/"...), v[1:17])
			v = v[17:]
		case (tag == latestUnit || tag == latestOther) && len(v) >= 2 && len(v) >= 2+int(v[1]):
			if tag == latestUnit {
				scope = append(scope, "unit/"...)
			}
			scope = append(scope, v[2:2+int(v[1])]...)
			v = v[2+int(v[1]):]
		default:
			return false
		}
		seq, n := binary.Uvarint(v)
		if n <= 0 {
			return false
		}
		v = v[n:]
		if !fn(scope, seq) {
			return true
		}
	}
	return true
}

// WithLatest is the latest value v with each of scopes at seq, in the
// compact form. A scope name must fit its length byte (255 bytes at most).
func WithLatest(v []byte, scopes []string, seq uint64) []byte {
	return withLatest(make([]byte, 1, len(v)+len(scopes)*(2+12+4)), v, scopes, seq, appendLatest)
}

// withLatest appends v's scopes but those of scopes, then scopes at seq,
// to out with add.
func withLatest(out, v []byte, scopes []string, seq uint64, add func(out, scope []byte, seq uint64) []byte) []byte {
	ForEachLatest(v, func(s []byte, q uint64) bool {
		if !slices.Contains(scopes, string(s)) {
			out = add(out, s, q)
		}
		return true
	})
	for _, s := range scopes {
		out = add(out, []byte(s), seq)
	}
	return out
}

// WithoutLatest is the latest value v without scope, in the compact form;
// empty when no scope is left.
func WithoutLatest(v, scope []byte) []byte {
	out := make([]byte, 1, len(v))
	ForEachLatest(v, func(s []byte, q uint64) bool {
		if string(s) != string(scope) {
			out = appendLatest(out, s, q)
		}
		return true
	})
	if len(out) == 1 {
		return out[:0]
	}
	return out
}

// appendLatest appends a scope and its seq to a compact value (out holds
// at least its first byte, latestCompact, which it sets).
func appendLatest(out, scope []byte, seq uint64) []byte {
	out[0] = latestCompact
	switch {
	case bytes.HasPrefix(scope, []byte("user/")):
		if u, ok := parseUUID(scope[len("user/"):]); ok {
			out = append(append(out, latestUser), u[:]...)
			break
		}
		out = append(append(out, latestOther, byte(len(scope))), scope...)
	case bytes.HasPrefix(scope, []byte("unit/")):
		code := scope[len("unit/"):]
		out = append(append(out, latestUnit, byte(len(code))), code...)
	default:
		out = append(append(out, latestOther, byte(len(scope))), scope...)
	}
	return binary.AppendUvarint(out, seq)
}

// WithLatestV15 is WithLatest in the form of schema 15 and older, which
// the upgrades up to schema 15 write: a store stopped at one of them holds
// what the fieldsyncd of that schema reads.
func WithLatestV15(v []byte, scopes []string, seq uint64) []byte {
	return withLatest(make([]byte, 0, len(v)+len(scopes)*(1+len("unit/")+12+8)), v, scopes, seq, appendLatestV15)
}

func appendLatestV15(out, scope []byte, seq uint64) []byte {
	out = append(out, byte(len(scope)))
	out = append(out, scope...)
	return binary.BigEndian.AppendUint64(out, seq)
}
