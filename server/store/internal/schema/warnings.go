package schema

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"

	bolt "go.etcd.io/bbolt"
)

// A warning's records side by side (schema 8 on). Bucket warnings holds,
// under keys that start with the warning's id, its state and then its
// sub-records:
//
//	id                              -> the state (syncproto.Warning, no attempts;
//	                                   compact from schema 14 on)
//	id 0x00 'a' ordinal (uint32 BE) -> an attempt (syncproto.Attempt;
//	                                   compact from schema 13 on)
//	id 0x00 'h' seq (uint64 BE)     -> nothing: a log entry of the warning
//	id 0x00 'l'                     -> its latest entries (latest.go's value)
//
// An op on a warning changes its state and adds a history entry, often an
// attempt, and rewrites its latest entries: four puts that, in buckets of
// their own keyed at random by the id, each dirtied a page of the file of
// its own (issue 17). Side by side they mostly share one page.
//
// 0x00 separates the id from the tag because no warning id holds it: ids
// are lowercase canonical UUIDs (syncproto.ValidUUID; the feed makes
// them with uuid.NewV7, an op names one that is checked). It also sorts
// below every byte of an id, so a warning's sub-records lie right after
// its state and before the state of any other warning, even one whose id
// were to start with this one's.

// WarningSep ends a warning's id in the key of one of its sub-records.
const WarningSep byte = 0x00

// Tags of a warning's sub-records, after its id and WarningSep.
const (
	TagAttempt byte = 'a'
	TagHistory byte = 'h'
	TagLatest  byte = 'l'
)

// WarningSubKey is the key of a warning's sub-record with tag, and the
// prefix of all of them with that tag (an attempt's and a history entry's
// keys go on with a number): the id, WarningSep, tag.
func WarningSubKey(id []byte, tag byte) []byte {
	k := make([]byte, 0, len(id)+2+8)
	k = append(k, id...)
	return append(k, WarningSep, tag)
}

// WarningAttemptKey is the key of a warning's attempt at ordinal i (from
// 0): its attempts lie together in the order recorded.
func WarningAttemptKey(id string, i int) []byte {
	return binary.BigEndian.AppendUint32(WarningSubKey([]byte(id), TagAttempt), uint32(i))
}

// WarningHistoryKey is the key of a warning's history entry up to schema
// 15: the log entry at seq concerns it. From schema 16 new entries go into
// the warning's history record (WarningHistoryRecordKey), and those of
// this form stay as they are.
func WarningHistoryKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(WarningSubKey([]byte(id), TagHistory), seq)
}

// WarningHistoryRecordKey is the key of a warning's history record
// (schema 16 on): the seqs of the log entries that concern it, in one
// value (AppendHistory), where each had a key of its own of 46 bytes. It
// sorts before the older entries, which go on with a seq.
func WarningHistoryRecordKey(id string) []byte {
	return WarningSubKey([]byte(id), TagHistory)
}

// AppendHistory is history record v with seq added: the seqs, ascending,
// as the unsigned varints of their differences, the first from 0 (one to
// three bytes a seq). v is not changed. A seq at or below the record's
// last is refused, but for the last itself, which is already there.
func AppendHistory(v []byte, seq uint64) ([]byte, error) {
	// The writer adds to a record on every op: the walk to its last seq
	// keeps none of the others.
	var last uint64
	n, err := eachHistorySeq(v, func(s uint64) { last = s })
	switch {
	case err != nil:
		return nil, err
	case n > 0 && seq == last:
		return v, nil
	case seq <= last:
		return nil, fmt.Errorf("history: seq %d after %d", seq, last)
	}
	out := make([]byte, len(v), len(v)+binary.MaxVarintLen64)
	copy(out, v)
	return binary.AppendUvarint(out, seq-last), nil
}

// ParseHistory is the seqs of history record v, oldest first.
func ParseHistory(v []byte) ([]uint64, error) {
	var seqs []uint64
	_, err := eachHistorySeq(v, func(s uint64) { seqs = append(seqs, s) })
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// eachHistorySeq calls fn with each seq of history record v, oldest first,
// and returns how many there are; an error for a record that is not one.
func eachHistorySeq(v []byte, fn func(seq uint64)) (int, error) {
	var seq uint64
	n := 0
	for ; len(v) > 0; n++ {
		d, size := binary.Uvarint(v)
		if size <= 0 || d == 0 && n > 0 {
			return n, fmt.Errorf("history record: bad varint at %d", n)
		}
		seq += d
		fn(seq)
		v = v[size:]
	}
	return n, nil
}

// WarningLatestKey is the key of a warning's latest entries.
func WarningLatestKey(id []byte) []byte {
	return WarningSubKey(id, TagLatest)
}

// IsWarningState reports whether k, a key of bucket warnings, is a
// warning's state rather than one of its sub-records.
func IsWarningState(k []byte) bool {
	return bytes.IndexByte(k, WarningSep) < 0
}

// SplitWarningKey parses a key of bucket warnings: the warning's id, and
// for a sub-record its tag and what follows the tag (tag 0 and rest nil
// for a state). ok is false for a sub-record key with no tag.
func SplitWarningKey(k []byte) (id []byte, tag byte, rest []byte, ok bool) {
	i := bytes.IndexByte(k, WarningSep)
	if i < 0 {
		return k, 0, nil, true
	}
	if i+1 >= len(k) {
		return k[:i], 0, nil, false
	}
	return k[:i], k[i+1], k[i+2:], true
}

// pastWarning is the least key above every sub-record of warning id.
func pastWarning(id []byte) []byte {
	k := make([]byte, 0, len(id)+1)
	return append(append(k, id...), WarningSep+1)
}

// WarningStates yields the states of bucket warnings in id order, from
// the first id at or after from (nil: the first), and skips the
// sub-records with a seek past each warning's. The keys and values point
// into the file's memory: copy what is kept past the transaction, and
// write to the bucket only after the loop (a write moves its cursor).
func WarningStates(b *bolt.Bucket, from []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		c := b.Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for k != nil {
			if id, _, _, _ := SplitWarningKey(k); len(id) < len(k) {
				k, v = c.Seek(pastWarning(id))
				continue
			}
			if !yield(k, v) {
				return
			}
			k, v = c.Next()
		}
	}
}

// CountWarnings counts the warnings of bucket warnings: its states, not
// its KeyN, which counts the sub-records too. A seek per warning.
func CountWarnings(b *bolt.Bucket) int {
	n := 0
	for range WarningStates(b, nil) {
		n++
	}
	return n
}
