package store

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
)

// A unit's day's histogram of one kind (minutes to first contact, to
// resolution, to closing) is one record in bucket statshist from schema
// 17 on, under histRecordKey: the minutes that have a count, ascending,
// each as the uvarint of its difference from the one before (the first
// from 0) followed by its count as a varint. Up to schema 16 each minute
// had a key of its own (histKey, 9 bytes longer) holding its count
// (histValue): at the demo city's activity eight keys a warning, with
// bbolt's 16 bytes of an element each, and as many B+tree updates a
// group. A minute is the uint32 the older keys held.

// histPair is one minute of a histogram and its count.
type histPair struct {
	minute uint32
	n      int64
}

// histRecordKey names unit's histogram of kind on day.
func histRecordKey(unit string, day uint32, kind byte) []byte {
	return append(statsKey(unit, day), kind)
}

// appendHistRecord encodes pairs, ascending by minute, leaving out the
// minutes whose count is 0.
func appendHistRecord(b []byte, pairs []histPair) []byte {
	var last uint32
	for _, p := range pairs {
		if p.n == 0 {
			continue
		}
		b = binary.AppendUvarint(b, uint64(p.minute-last))
		b = binary.AppendVarint(b, p.n)
		last = p.minute
	}
	return b
}

var errHistRecord = errors.New("a histogram record that does not decode")

// parseHistRecord appends the pairs of a record to pairs, ascending.
func parseHistRecord(pairs []histPair, v []byte) ([]histPair, error) {
	var minute uint64
	for first := true; len(v) > 0; first = false {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return pairs, errHistRecord
		}
		v = v[n:]
		count, n := binary.Varint(v)
		if n <= 0 {
			return pairs, errHistRecord
		}
		v = v[n:]
		minute += d
		if minute > 1<<32-1 || (!first && d == 0) {
			return pairs, errHistRecord
		}
		pairs = append(pairs, histPair{minute: uint32(minute), n: count})
	}
	return pairs, nil
}

// mergeHist adds the counts of delta to those of base, both ascending by
// minute, into out.
func mergeHist(out, base, delta []histPair) []histPair {
	i, j := 0, 0
	for i < len(base) || j < len(delta) {
		switch {
		case j == len(delta) || i < len(base) && base[i].minute < delta[j].minute:
			out = append(out, base[i])
			i++
		case i == len(base) || delta[j].minute < base[i].minute:
			out = append(out, delta[j])
			j++
		default:
			out = append(out, histPair{minute: base[i].minute, n: base[i].n + delta[j].n})
			i, j = i+1, j+1
		}
	}
	return out
}

// histKeyForm tells the two forms of a statshist key apart: a record's
// (schema 17 on) is the statistics key and a kind, an older minute's has
// the minute's 4 bytes after them. The separator '/' before the day sits
// 10 bytes from a minute key's end; in a record key that byte is a digit
// of the unit's code, which has 4 to 12 digits.
func histKeyForm(k []byte) (prefix []byte, minute uint32, isMinute bool) {
	if n := len(k); n >= 10 && k[n-10] == '/' {
		return k[:n-4], binary.BigEndian.Uint32(k[n-4:]), true
	}
	return k, 0, false
}

// HistRecords reads bucket statshist, in either form or both, as the
// records schema 17 writes, keyed as they are: what `fieldsyncd check`
// compares with ExpectedStats. A value that decodes in neither form is
// reported in bad by its key.
func HistRecords(each func(fn func(k, v []byte) error) error) (records map[string][]byte, bad []string, err error) {
	sums := histSums{}
	err = each(func(k, v []byte) error {
		prefix, minute, isMinute := histKeyForm(k)
		if isMinute {
			n, ok := HistCount(v)
			if !ok {
				bad = append(bad, string(k))
				return nil
			}
			sums.add(prefix, minute, n)
			return nil
		}
		pairs, perr := parseHistRecord(nil, v)
		if perr != nil {
			bad = append(bad, string(k))
			return nil
		}
		for _, p := range pairs {
			sums.add(prefix, p.minute, p.n)
		}
		return nil
	})
	return sums.records(), bad, err
}

// histSums adds up histograms minute by minute, by record key.
type histSums map[string]map[uint32]int64

func (s histSums) add(key []byte, minute uint32, n int64) {
	h := s[string(key)]
	if h == nil {
		h = map[uint32]int64{}
		s[string(key)] = h
	}
	h[minute] += n
}

// records encodes each histogram that has a count left, by its key.
func (s histSums) records() map[string][]byte {
	out := make(map[string][]byte, len(s))
	for key, h := range s {
		if v := appendHistRecord(nil, histPairsOf(h)); len(v) > 0 {
			out[key] = v
		}
	}
	return out
}

// histPairsOf lists a histogram held as a map, ascending, zeros kept.
func histPairsOf(h map[uint32]int64) []histPair {
	pairs := make([]histPair, 0, len(h))
	for _, m := range slices.Sorted(maps.Keys(h)) {
		pairs = append(pairs, histPair{minute: m, n: h[m]})
	}
	return pairs
}
