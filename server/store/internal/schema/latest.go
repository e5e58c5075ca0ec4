package schema

import (
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Bucket latest holds one key per record (entity byte + id), whose value
// lists the seq of the record's latest entry in each scope that holds one:
// repeated [scope length (1 byte)][scope][seq (8 bytes, big-endian)].

// LatestSeq is the seq of rec's latest entry in scope; ok is false when
// none is recorded.
func LatestSeq(lb *bolt.Bucket, rec, scope []byte) (seq uint64, ok bool) {
	if lb == nil {
		return 0, false
	}
	ForEachLatest(lb.Get(rec), func(s []byte, q uint64) bool {
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
