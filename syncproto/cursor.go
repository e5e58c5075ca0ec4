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
	Incarnation [8]byte
	Scope       [4]byte
	Seq         uint64
	// Floor is set on the pages of a pull that started from nothing (a
	// first pull, a reset): its scope's tombstone horizon on the server
	// when it started. Removes at or below it were dropped before the device read
	// anything, so the device cannot be missing them, however low Seq
	// still is.
	Floor uint64
	// Snapshot is also set on the pages of a pull that started from
	// nothing: the head of the log when it started. A remove at or below
	// it that is its record's latest change is of a record the device
	// never had (it had nothing, and every put it was sent since was its
	// record's latest then, older than that remove): the server skips it.
	Snapshot uint64
}

// cursorVersion 2 is short: a no-change sync sends the cursor both ways,
// and every byte counts on a rural mobile link. Version 3 adds Floor, and
// is written only while Floor is above Seq (in the middle of a first pull).
// Version 4 adds Snapshot after Floor (0 there when not above Seq), and is
// written only while Snapshot is above Seq.
const (
	cursorVersion         = 2
	cursorVersionFloor    = 3
	cursorVersionSnapshot = 4
)

// ScopeHash names a set of scope buckets; a cursor made for one set is
// not valid for another.
func ScopeHash(buckets []string) [4]byte {
	sorted := slices.Clone(buckets)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	var h [4]byte
	copy(h[:], sum[:4])
	return h
}

// Encode returns the cursor's opaque string.
func (c Cursor) Encode() string {
	b := make([]byte, 1+8+4, 1+8+4+3*binary.MaxVarintLen64)
	b[0] = cursorVersion
	copy(b[1:9], c.Incarnation[:])
	copy(b[9:13], c.Scope[:])
	b = binary.AppendUvarint(b, c.Seq)
	floor := c.Floor
	if floor <= c.Seq {
		floor = 0
	}
	switch {
	case c.Snapshot > c.Seq:
		b[0] = cursorVersionSnapshot
		b = binary.AppendUvarint(b, floor)
		b = binary.AppendUvarint(b, c.Snapshot)
	case floor > 0:
		b[0] = cursorVersionFloor
		b = binary.AppendUvarint(b, floor)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor reads a cursor string. "" is the zero cursor: start from the
// beginning. A string that is not a cursor at all is cursor_expired.
func ParseCursor(s string) (Cursor, *Error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	expired := Errorf(CodeCursorExpired, "the cursor cannot be read; pull again from an empty cursor")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 14 || len(b) > 13+3*binary.MaxVarintLen64 || b[0] < cursorVersion || b[0] > cursorVersionSnapshot {
		return c, expired
	}
	copy(c.Incarnation[:], b[1:9])
	copy(c.Scope[:], b[9:13])
	seq, n := binary.Uvarint(b[13:])
	if n <= 0 {
		return Cursor{}, expired
	}
	c.Seq = seq
	rest := b[13+n:]
	if b[0] == cursorVersion {
		if len(rest) != 0 {
			return Cursor{}, expired
		}
		return c, nil
	}
	floor, n := binary.Uvarint(rest)
	if n <= 0 {
		return Cursor{}, expired
	}
	rest = rest[n:]
	if b[0] == cursorVersionFloor {
		if len(rest) != 0 || floor <= seq {
			return Cursor{}, expired
		}
		c.Floor = floor
		return c, nil
	}
	snapshot, n := binary.Uvarint(rest)
	if n <= 0 || n != len(rest) || (floor != 0 && floor <= seq) || snapshot <= seq {
		return Cursor{}, expired
	}
	c.Floor, c.Snapshot = floor, snapshot
	return c, nil
}
