package store

import (
	"maps"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A histogram record gives back the minutes and counts it was made of,
// ascending and without the zeros; merging changes into it gives the sum
// minute by minute; a record cut short, one repeating a minute and one
// going past a uint32 minute do not decode.
func TestHistRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 17))
	for range 500 {
		base, delta := map[uint32]int64{}, map[uint32]int64{}
		for range rng.IntN(40) {
			base[uint32(rng.IntN(3000))] = int64(1 + rng.IntN(300))
		}
		if rng.IntN(10) == 0 {
			base[1<<32-1] = 2 // the largest minute an older key held
		}
		for m, n := range base {
			switch rng.IntN(3) {
			case 0:
				delta[m] = -n // back to nothing
			case 1:
				delta[m] = int64(rng.IntN(5)) - 2
			}
		}
		for range rng.IntN(5) {
			delta[uint32(rng.IntN(3000))] += 1
		}
		rec := appendHistRecord(nil, histPairsOf(base))
		got, err := parseHistRecord(nil, rec)
		if err != nil {
			t.Fatalf("record of %v: %v", base, err)
		}
		if m := pairsMap(got); !maps.Equal(m, nonZero(base)) {
			t.Fatalf("record of %v reads back %v", base, m)
		}
		want := map[uint32]int64{}
		for m, n := range base {
			want[m] += n
		}
		for m, n := range delta {
			want[m] += n
		}
		merged := appendHistRecord(nil, mergeHist(nil, got, histPairsOf(delta)))
		back, err := parseHistRecord(nil, merged)
		if err != nil {
			t.Fatal(err)
		}
		if m := pairsMap(back); !maps.Equal(m, nonZero(want)) {
			t.Fatalf("%v merged with %v reads %v, want %v", base, delta, m, nonZero(want))
		}
	}
	for name, v := range map[string][]byte{
		"cut short":         {0x05, 0x80},
		"no count":          {0x05},
		"a minute repeated": {0x05, 0x02, 0x00, 0x02},
		"past a uint32":     {0xff, 0xff, 0xff, 0xff, 0x1f, 0x02},
	} {
		if _, err := parseHistRecord(nil, v); err == nil {
			t.Errorf("a record %s (%x) decodes", name, v)
		}
	}
	if got, err := parseHistRecord(nil, []byte{0x00, 0x04}); err != nil || len(got) != 1 || got[0] != (histPair{0, 2}) {
		t.Errorf("minute 0 with 2: %v %v", got, err)
	}
}

func pairsMap(pairs []histPair) map[uint32]int64 {
	m := map[uint32]int64{}
	for i, p := range pairs {
		if i > 0 && pairs[i-1].minute >= p.minute {
			panic("pairs out of order")
		}
		m[p.minute] = p.n
	}
	return m
}

func nonZero(h map[uint32]int64) map[uint32]int64 {
	out := map[uint32]int64{}
	for m, n := range h {
		if n != 0 {
			out[m] = n
		}
	}
	return out
}

// A histogram record that does not decode is taken as empty when a group
// adds to it, as an older count that did not decode was taken as 0: the
// group commits, and the record holds the group's minutes.
func TestFlushHists_DamagedRecord(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := histRecordKey("411002", 20261205, histContact)
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("statshist"))
		if err != nil {
			return err
		}
		if err := b.Put(prefix, []byte{0x05, 0x80}); err != nil {
			return err
		}
		return flushHists(b, []keyed[int64]{
			{key: histKey("411002", 20261205, histContact, 7), val: 2},
			{key: histKey("411002", 20261205, histContact, 9), val: 1},
		})
	})
	if err != nil {
		t.Fatalf("a group adding to a damaged histogram: %v", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		got, err := parseHistRecord(nil, tx.Bucket([]byte("statshist")).Get(prefix))
		if err != nil {
			return err
		}
		if m := pairsMap(got); !maps.Equal(m, map[uint32]int64{7: 2, 9: 1}) {
			t.Errorf("the record holds %v, want the group's minutes", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzHistRecord: any bytes either fail to decode or decode to minutes
// strictly ascending, which encode back (zeros left out) to a record
// that decodes to the same non-zero minutes. `make fuzz` runs it.
func FuzzHistRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendHistRecord(nil, histPairsOf(map[uint32]int64{0: 1, 7: 2, 1<<32 - 1: 3})))
	f.Add([]byte{0x05, 0x00, 0x02, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		pairs, err := parseHistRecord(nil, v)
		if err != nil {
			return
		}
		m := pairsMap(pairs) // panics on minutes out of order
		back, err := parseHistRecord(nil, appendHistRecord(nil, pairs))
		if err != nil {
			t.Fatalf("%x decodes to %v, whose record does not decode: %v", v, pairs, err)
		}
		if got := pairsMap(back); !maps.Equal(got, nonZero(m)) {
			t.Fatalf("%x decodes to %v, encoded again to %v", v, m, got)
		}
	})
}
