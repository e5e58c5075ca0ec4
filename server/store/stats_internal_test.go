package store

import (
	"math"
	"testing"
)

// TestCounters_AddSaturates: a unit's figures are sums of what each of its
// warnings contributes. Two losses of 2^63-1 fen once summed to -2; a sum
// must stop at the int64 limits instead of turning into a number of the
// other sign, whichever way it is moved.
func TestCounters_AddSaturates(t *testing.T) {
	t.Run("TwoHugeLosses", func(t *testing.T) {
		var total counters
		huge := counters{Received: 1, AlreadyDefrauded: 1, LossFen: math.MaxInt64}
		total.add(&huge, 1)
		total.add(&huge, 1)
		if total.LossFen != math.MaxInt64 || total.Received != 2 {
			t.Fatalf("loss %d, received %d; want the loss held at %d", total.LossFen, total.Received, int64(math.MaxInt64))
		}
	})
	t.Run("HalfOfTheRangeTwice", func(t *testing.T) {
		// The attack as it was sent: 2^62 fen on two warnings.
		total := counters{LossFen: 5_050_700}
		half := counters{LossFen: 1 << 62}
		total.add(&half, 1)
		total.add(&half, 1)
		if total.LossFen != math.MaxInt64 {
			t.Fatalf("loss %d, want %d", total.LossFen, int64(math.MaxInt64))
		}
	})
	t.Run("TakenOutBelowTheFloor", func(t *testing.T) {
		total := counters{LossFen: math.MinInt64 + 1}
		two := counters{LossFen: 2}
		total.add(&two, -1)
		if total.LossFen != math.MinInt64 {
			t.Fatalf("loss %d, want %d", total.LossFen, int64(math.MinInt64))
		}
	})
	t.Run("OrdinarySumsAreExact", func(t *testing.T) {
		total := counters{LossFen: 5_050_700, Open: 3}
		c := counters{LossFen: 1_000_000_000_000, Open: 1}
		total.add(&c, 1)
		total.add(&c, -1)
		total.add(&c, 1)
		if total.LossFen != 1_000_005_050_700 || total.Open != 4 {
			t.Fatalf("loss %d, open %d", total.LossFen, total.Open)
		}
	})
}

func TestAddSaturating(t *testing.T) {
	for _, tc := range []struct {
		a, b, sign, want int64
	}{
		{1, 2, 1, 3},
		{1, 2, -1, -1},
		{math.MaxInt64, 1, 1, math.MaxInt64},
		{math.MinInt64, 1, -1, math.MinInt64},
		{math.MinInt64, -1, 1, math.MinInt64},
		{0, math.MinInt64, -1, math.MaxInt64},
		{-1, math.MinInt64, -1, math.MaxInt64},
		{-2, math.MinInt64, -1, math.MaxInt64 - 1},
		{math.MaxInt64, math.MaxInt64, -1, 0},
	} {
		if got := addSaturating(tc.a, tc.b, tc.sign); got != tc.want {
			t.Errorf("addSaturating(%d, %d, %d) = %d, want %d", tc.a, tc.b, tc.sign, got, tc.want)
		}
	}
}
