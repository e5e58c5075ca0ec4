package syncproto_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

func TestCursor(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, c := range []syncproto.Cursor{
			{},
			{Seq: 1},
			{Incarnation: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Scope: syncproto.ScopeHash([]string{"unit/411002001"}), Seq: 1<<64 - 1},
			{Incarnation: [8]byte{0xff}, Scope: [4]byte{0, 0, 0, 0xfe}, Seq: 1 << 33},
			{Scope: [4]byte{1}, Seq: 5, Floor: 900},
			{Seq: 0, Floor: 1<<64 - 1},
			{Scope: [4]byte{3}, Seq: 5, Snapshot: 6},
			{Scope: [4]byte{3}, Seq: 5, Floor: 900, Snapshot: 1200},
			{Seq: 0, Floor: 1<<64 - 2, Snapshot: 1<<64 - 1},
		} {
			s := c.Encode()
			if s == "" || strings.ContainsAny(s, "+/=") {
				t.Fatalf("cursor %q is empty or not URL-safe", s)
			}
			got, err := syncproto.ParseCursor(s)
			if err != nil {
				t.Fatalf("ParseCursor(%q): %v", s, err)
			}
			if got != c {
				t.Fatalf("ParseCursor(Encode(%+v)) = %+v", c, got)
			}
		}
	})

	t.Run("FieldsChangeTheString", func(t *testing.T) {
		base := syncproto.Cursor{Incarnation: [8]byte{1}, Scope: [4]byte{2}, Seq: 3}
		seen := map[string]bool{base.Encode(): true}
		for _, c := range []syncproto.Cursor{
			{Incarnation: [8]byte{9}, Scope: base.Scope, Seq: base.Seq},
			{Incarnation: base.Incarnation, Scope: [4]byte{9}, Seq: base.Seq},
			{Incarnation: base.Incarnation, Scope: base.Scope, Seq: 4},
			{Incarnation: base.Incarnation, Scope: base.Scope, Seq: base.Seq, Floor: 10},
			{Incarnation: base.Incarnation, Scope: base.Scope, Seq: base.Seq, Snapshot: 10},
			{Incarnation: base.Incarnation, Scope: base.Scope, Seq: base.Seq, Floor: 10, Snapshot: 11},
		} {
			if seen[c.Encode()] {
				t.Fatalf("%+v encodes like another cursor", c)
			}
			seen[c.Encode()] = true
		}
	})

	t.Run("EmptyIsZero", func(t *testing.T) {
		c, err := syncproto.ParseCursor("")
		if err != nil || c != (syncproto.Cursor{}) {
			t.Fatalf("ParseCursor(\"\") = %+v, %v; want the zero cursor", c, err)
		}
	})

	valid := syncproto.Cursor{Seq: 7}.Encode()
	raw, _ := base64.RawURLEncoding.DecodeString(valid)
	otherVersion := slices.Clone(raw)
	otherVersion[0] = 1
	t.Run("FloorOnlyAboveSeq", func(t *testing.T) {
		// A floor at or below the seq says nothing: the short form is
		// written, and parses back with no floor.
		c := syncproto.Cursor{Seq: 7, Floor: 7}
		if c.Encode() != valid {
			t.Fatalf("a floor not above the seq changed the cursor")
		}
	})
	t.Run("SnapshotOnlyAboveSeq", func(t *testing.T) {
		// A snapshot at or below the seq says nothing either, nor does
		// a floor below it in the long form.
		if (syncproto.Cursor{Seq: 7, Snapshot: 7}).Encode() != valid {
			t.Fatalf("a snapshot not above the seq changed the cursor")
		}
		a, b := syncproto.Cursor{Seq: 7, Floor: 3, Snapshot: 9}, syncproto.Cursor{Seq: 7, Snapshot: 9}
		if a.Encode() != b.Encode() {
			t.Fatalf("a floor not above the seq changed the cursor")
		}
	})
	snapRaw, _ := base64.RawURLEncoding.DecodeString(syncproto.Cursor{Seq: 7, Floor: 8, Snapshot: 9}.Encode())
	snapNotAbove := slices.Clone(snapRaw)
	snapNotAbove[len(snapNotAbove)-1] = 7
	snapFloorNotAbove := slices.Clone(snapRaw)
	snapFloorNotAbove[len(snapFloorNotAbove)-2] = 6
	floorRaw, _ := base64.RawURLEncoding.DecodeString(syncproto.Cursor{Seq: 7, Floor: 9}.Encode())
	floorNotAbove := slices.Clone(floorRaw)
	floorNotAbove[len(floorNotAbove)-1] = 7
	for name, s := range map[string]string{
		"FloorNotAbove":         base64.RawURLEncoding.EncodeToString(floorNotAbove),
		"FloorTrailing":         base64.RawURLEncoding.EncodeToString(append(slices.Clone(floorRaw), 0)),
		"FloorMissing":          base64.RawURLEncoding.EncodeToString(floorRaw[:len(floorRaw)-1]),
		"SnapshotNotAbove":      base64.RawURLEncoding.EncodeToString(snapNotAbove),
		"SnapshotFloorNotAbove": base64.RawURLEncoding.EncodeToString(snapFloorNotAbove),
		"SnapshotTrailing":      base64.RawURLEncoding.EncodeToString(append(slices.Clone(snapRaw), 0)),
		"SnapshotMissing":       base64.RawURLEncoding.EncodeToString(snapRaw[:len(snapRaw)-1]),
		"Garbage":               "not a cursor!",
		"Padded":                valid + "=",
		"StdAlphabet":           "+" + valid[1:],
		"Short":                 valid[:len(valid)-4],
		"Long":                  valid + "AAAA",
		"SeqTrailing":           base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw), 0)),
		"OtherVersion":          base64.RawURLEncoding.EncodeToString(otherVersion),
		"Number":                "12345",
	} {
		t.Run("Expired_"+name, func(t *testing.T) {
			c, err := syncproto.ParseCursor(s)
			requireCode(t, err, syncproto.CodeCursorExpired)
			if c != (syncproto.Cursor{}) {
				t.Fatalf("a bad cursor parsed to %+v", c)
			}
		})
	}
}

func TestScopeHash(t *testing.T) {
	a := []string{"unit/411002001", "user/" + cadreOne, "unit/4110"}
	t.Run("OrderIndependent", func(t *testing.T) {
		want := syncproto.ScopeHash(a)
		for _, p := range [][]string{
			{a[1], a[0], a[2]},
			{a[2], a[1], a[0]},
			{a[0], a[2], a[1]},
		} {
			if got := syncproto.ScopeHash(p); got != want {
				t.Fatalf("ScopeHash(%v) = %x, want %x", p, got, want)
			}
		}
	})
	t.Run("InputUntouched", func(t *testing.T) {
		in := slices.Clone(a)
		syncproto.ScopeHash(in)
		if !slices.Equal(in, a) {
			t.Fatalf("ScopeHash reordered its input: %v", in)
		}
	})
	t.Run("DiffersAcrossSets", func(t *testing.T) {
		seen := map[[4]byte][]string{}
		for _, set := range [][]string{
			nil,
			{"unit/4110"},
			{"unit/411002"},
			{"unit/4110", "unit/411002"},
			{"user/" + cadreOne},
			{"user/" + cadreTwoA},
			a,
			a[:2],
			append(slices.Clone(a), "unit/411003"),
		} {
			h := syncproto.ScopeHash(set)
			if prev, ok := seen[h]; ok {
				t.Fatalf("ScopeHash(%v) = ScopeHash(%v) = %x", set, prev, h)
			}
			seen[h] = set
		}
	})
}
