package feed

import "testing"

// FuzzSafeCell checks that no cell SafeCell writes starts a formula, and
// that plainCell, which ParseCSV applies, gives every value back.
func FuzzSafeCell(f *testing.F) {
	for _, s := range []string{"", "x", "=1", "'=1", "''", "'", "'a", "-", "\t", "'\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		safe := SafeCell(v)
		if safe != "" && startsFormula(safe[0]) {
			t.Fatalf("SafeCell(%q) = %q starts a formula", v, safe)
		}
		if back := plainCell(safe); back != v {
			t.Fatalf("plainCell(SafeCell(%q)) = %q", v, back)
		}
	})
}
