package syncproto

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
)

// Cursor is where a device's pull stands: which store made it (Incarnation),
// for which set of scope buckets (Scope), and the last log sequence the
// device has applied. On the wire it is opaque.
type Cursor struct {
	Incarnation [16]byte
	Scope       [8]byte
	Seq         uint64
}

const cursorVersion = 1

// ScopeHash names a set of scope buckets; a cursor made for one set is
// not valid for another.
func ScopeHash(buckets []string) [8]byte {
	sorted := slices.Clone(buckets)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	var h [8]byte
	copy(h[:], sum[:8])
	return h
}

// Encode returns the cursor's opaque string.
func (c Cursor) Encode() string {
	var b [1 + 16 + 8 + 8]byte
	b[0] = cursorVersion
	copy(b[1:17], c.Incarnation[:])
	copy(b[17:25], c.Scope[:])
	binary.BigEndian.PutUint64(b[25:], c.Seq)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseCursor reads a cursor string. "" is the zero cursor: start from the
// beginning. A string that is not a cursor at all is cursor_expired.
func ParseCursor(s string) (Cursor, *Error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 33 || b[0] != cursorVersion {
		return c, Errorf(CodeCursorExpired, "the cursor cannot be read; pull again from an empty cursor")
	}
	copy(c.Incarnation[:], b[1:17])
	copy(c.Scope[:], b[17:25])
	c.Seq = binary.BigEndian.Uint64(b[25:])
	return c, nil
}
