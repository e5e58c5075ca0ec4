package schema

import (
	"bytes"
	"slices"
	"testing"
)

// TestIndexValue: a warning with a canonical UUID id is written in 18
// bytes and read back as its text rec; any other rec, and a value written
// before schema 11, reads as it is.
func TestIndexValue(t *testing.T) {
	const id = "01a21c83-c668-7258-8184-1ab5f50006c3"
	cases := []struct {
		rec  string
		size int
	}{
		{"w" + id, 18},
		{"w" + "01A21C83-C668-7258-8184-1AB5F50006C3", 38}, // not canonical: kept as text
		{"w" + "01a21c83c66872588184-1ab5f50006c3abc", 38},
		{"wshort", 7},
		{"s" + id, 38},
		{"u411002001", 11},
	}
	for _, c := range cases {
		for _, kind := range []byte{IdxPut, IdxRemove} {
			v := IndexValue(kind, []byte(c.rec))
			if len(v) != c.size {
				t.Errorf("IndexValue(%c, %q) is %d bytes, want %d", kind, c.rec, len(v), c.size)
			}
			k, rec, ok := ParseIndexValue(v)
			if !ok || k != kind || string(rec) != c.rec {
				t.Errorf("ParseIndexValue(IndexValue(%c, %q)) = %c %q %v", kind, c.rec, k, rec, ok)
			}
		}
	}
	// A value as schema 10 and older wrote it.
	if k, rec, ok := ParseIndexValue([]byte("pw" + id)); !ok || k != IdxPut || string(rec) != "w"+id {
		t.Errorf("an old value reads as %c %q %v", k, rec, ok)
	}
	for _, v := range []string{"", "p", "pW", "pW0123456789abcdef0"} {
		if _, _, ok := ParseIndexValue([]byte(v)); ok {
			t.Errorf("ParseIndexValue(%q) is ok", v)
		}
	}
}

// FuzzIndexValue: whatever a value holds, reading it never panics, and a
// rec read from one writes back to a value that reads the same; a rec
// written reads back as it was.
func FuzzIndexValue(f *testing.F) {
	f.Add([]byte("pw01a21c83-c668-7258-8184-1ab5f50006c3"))
	f.Add(append([]byte("rW"), bytes.Repeat([]byte{0xab}, 16)...))
	f.Add([]byte("pu411002"))
	f.Add([]byte("p"))
	f.Fuzz(func(t *testing.T, v []byte) {
		if kind, rec, ok := ParseIndexValue(v); ok {
			k2, rec2, ok2 := ParseIndexValue(IndexValue(kind, rec))
			if !ok2 || k2 != kind || !bytes.Equal(rec2, rec) {
				t.Fatalf("value %q reads as %c %q, which writes back as %c %q %v", v, kind, rec, k2, rec2, ok2)
			}
		}
		if len(v) >= 2 && v[1] != RecWarningUUID {
			kind, rec := v[0], v[1:]
			k2, rec2, ok := ParseIndexValue(IndexValue(kind, rec))
			if !ok || k2 != kind || !bytes.Equal(rec2, rec) {
				t.Fatalf("rec %q of kind %c reads back as %c %q %v", rec, kind, k2, rec2, ok)
			}
		}
	})
}

// A history record reads back the seqs added, and a damaged one is an
// error rather than a wrong history.
func TestHistoryRecord(t *testing.T) {
	var v []byte
	want := []uint64{1, 2, 130, 1 << 40}
	for _, seq := range want {
		var err error
		if v, err = AppendHistory(v, seq); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseHistory(v)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseHistory = %v, %v; want %v", got, err, want)
	}
	if _, err := ParseHistory(append(slices.Clone(v), 0x80)); err == nil {
		t.Error("a record cut inside a varint parsed")
	}
	if _, err := ParseHistory(append(slices.Clone(v), 0)); err == nil {
		t.Error("a record with a seq twice parsed")
	}
}
