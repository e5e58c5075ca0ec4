package schema

// An index entry (idx/<scope>: seq -> value) is its kind, then the record
// it is of. A record is named by its rec: its entity byte, then its id
// (RecWarning, 'u' for a unit, 's' for a user). Before schema 11 the value
// held the rec as it is; from schema 11 a warning whose id is a canonical
// UUID (as every warning's is: syncproto.ValidUUID) is written under
// entity byte RecWarningUUID with the id's 16 bytes instead of its 36
// characters: 18 bytes for 38, in the four or so entries each op writes.
// Readers take both forms, so nothing is rewritten: ParseIndexValue gives
// the rec in its text form whichever was written, the form the latest
// values are keyed by (latest.go).

// Index entry kinds, the value's first byte.
const (
	IdxPut    byte = 'p'
	IdxRemove byte = 'r'
)

// RecWarningUUID is the entity byte of a warning in an index value whose id
// follows as a UUID's 16 bytes.
const RecWarningUUID byte = 'W'

// IndexValue is the value of an index entry of kind for rec, a warning's
// with its id as 16 bytes when the id is a canonical UUID.
func IndexValue(kind byte, rec []byte) []byte {
	if len(rec) == 1+36 && rec[0] == RecWarning {
		if u, ok := parseUUID(rec[1:]); ok {
			v := make([]byte, 0, 2+16)
			v = append(v, kind, RecWarningUUID)
			return append(v, u[:]...)
		}
	}
	v := make([]byte, 0, 1+len(rec))
	return append(append(v, kind), rec...)
}

// ParseIndexValue is the kind and rec, in its text form, of an index
// entry's value; ok is false for a value too short to hold them, or a
// RecWarningUUID one whose id is not 16 bytes. The rec is a new slice
// only for a RecWarningUUID value; otherwise it points into v.
func ParseIndexValue(v []byte) (kind byte, rec []byte, ok bool) {
	if len(v) < 2 {
		return 0, nil, false
	}
	if v[1] != RecWarningUUID {
		return v[0], v[1:], true
	}
	if len(v) != 2+16 {
		return 0, nil, false
	}
	rec = make([]byte, 1, 1+36)
	rec[0] = RecWarning
	return v[0], appendUUID(rec, v[2:]), true
}

const hexDigits = "0123456789abcdef"

// appendUUID appends the canonical text of the UUID u (16 bytes):
// lowercase hex, dashes after the 4th, 6th, 8th and 10th byte.
func appendUUID(dst, u []byte) []byte {
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return dst
}

// parseUUID reads a UUID in its canonical text only (36 characters,
// lowercase hex, dashes where appendUUID puts them), so that appendUUID
// gives back exactly the id it read.
func parseUUID(s []byte) (u [16]byte, ok bool) {
	if len(s) != 36 {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return u, false
			}
			i++
			continue
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi < 0 || lo < 0 {
			return u, false
		}
		u[j] = byte(hi<<4 | lo)
		j++
		i += 2
	}
	return u, true
}

// unhex is the value of a lowercase hex digit, -1 for any other byte.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// AppendWarningID appends a warning's id to a key: as its 16 bytes when it
// is a canonical UUID, as it is otherwise (never 16 bytes long: a UUID's
// text is 36). WarningIDText reads either back.
func AppendWarningID(dst []byte, id string) []byte {
	if u, ok := parseUUID([]byte(id)); ok {
		return append(dst, u[:]...)
	}
	return append(dst, id...)
}

// WarningIDText is the text of a warning id that AppendWarningID wrote,
// or that was written as text: a new slice for 16 bytes, b itself
// otherwise.
func WarningIDText(b []byte) []byte {
	if len(b) == 16 {
		return appendUUID(make([]byte, 0, 36), b)
	}
	return b
}
