package schema

import (
	"slices"
	"testing"
)

type scopeSeq struct {
	scope string
	seq   uint64
}

func latestEntries(t *testing.T, v []byte) []scopeSeq {
	t.Helper()
	var out []scopeSeq
	if !ForEachLatest(v, func(scope []byte, seq uint64) bool {
		out = append(out, scopeSeq{string(scope), seq})
		return true
	}) {
		t.Fatalf("value %x does not read as a whole list", v)
	}
	return out
}

// A latest value of schema 15's form reads as it is, and a change writes
// the compact form (schema 16), which reads back the same scopes: a user
// scope by its id's 16 bytes, a unit's by its code, any other by its name.
func TestLatest_CompactForm(t *testing.T) {
	const user = "user/01a24d63-e702-7389-a420-fc4585756757"
	old := WithLatestV15(nil, []string{user, "unit/411002003", "unit/411002"}, 1_465_596)
	if old[0] == latestCompact {
		t.Fatal("schema 15's form starts with the compact marker")
	}
	v := WithLatest(old, []string{"unit/411002", "user/not-a-uuid", "scope/other"}, 1_520_518)
	want := []scopeSeq{{user, 1_465_596}, {"unit/411002003", 1_465_596}, {"unit/411002", 1_520_518}, {"user/not-a-uuid", 1_520_518}, {"scope/other", 1_520_518}}
	if got := latestEntries(t, v); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if v[0] != latestCompact {
		t.Fatalf("a value written by WithLatest starts with %#x", v[0])
	}
	// 1 marker; 17+3 the user; 2+9+3 and 2+6+3 the units; 2+15+3 and
	// 2+11+3 the others: where schema 15's form took 50+23+20+24+20.
	if len(v) != 1+20+14+11+20+16 {
		t.Errorf("the compact value takes %d bytes", len(v))
	}
	if seq, ok := LatestSeq(Latest{}, nil, nil); ok || seq != 0 {
		t.Error("an empty Latest names a seq")
	}
	for _, s := range []string{user, "unit/411002003", "unit/411002", "user/not-a-uuid", "scope/other"} {
		v = WithoutLatest(v, []byte(s))
	}
	if len(v) != 0 {
		t.Errorf("a value without any scope left is %x, want empty", v)
	}
	cut := WithLatest(nil, []string{user}, 300)
	if ForEachLatest(cut[:len(cut)-1], func([]byte, uint64) bool { return true }) {
		t.Error("a value cut inside its seq read as whole")
	}
	if ForEachLatest(cut[:5], func([]byte, uint64) bool { return true }) {
		t.Error("a value cut inside its user id read as whole")
	}
}

// FuzzLatest: ForEachLatest reads any bytes without panicking, and a
// value rewritten by WithLatest reads back what was read, in the compact
// form.
func FuzzLatest(f *testing.F) {
	f.Add(WithLatestV15(nil, []string{"unit/4110", "user/01a24d63-e702-7389-a420-fc4585756757"}, 7))
	f.Add(WithLatest(nil, []string{"unit/4110", "user/01a24d63-e702-7389-a420-fc4585756757", "x"}, 1<<40))
	f.Add([]byte{0, 2, 200})
	f.Fuzz(func(t *testing.T, v []byte) {
		var read []scopeSeq
		whole := ForEachLatest(v, func(scope []byte, seq uint64) bool {
			read = append(read, scopeSeq{string(scope), seq})
			return true
		})
		if !whole {
			return
		}
		var out []byte
		seen := map[string]bool{}
		for _, e := range read {
			if len(e.scope) > 255 || seen[e.scope] {
				return // WithLatest keeps a scope once, and fits it in a byte
			}
			seen[e.scope] = true
			out = WithLatest(out, []string{e.scope}, e.seq)
		}
		var again []scopeSeq
		ForEachLatest(out, func(scope []byte, seq uint64) bool {
			again = append(again, scopeSeq{string(scope), seq})
			return true
		})
		if !slices.Equal(read, again) {
			t.Fatalf("read %v, rewritten %v", read, again)
		}
	})
}
