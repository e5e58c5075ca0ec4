package syncproto_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestContribution: what one warning counts for in its unit's day.
func TestContribution(t *testing.T) {
	attempt := func(outcome string, reached bool, loss int64) syncproto.Attempt {
		return syncproto.Attempt{ID: id(700), By: cadreTwoA, Method: syncproto.MethodPhone, Reached: reached, Outcome: outcome, LossFen: loss}
	}
	for _, tc := range []struct {
		name string
		edit func(w *syncproto.Warning)
		want syncproto.Counts
	}{
		{"New", func(w *syncproto.Warning) {}, syncproto.Counts{Received: 1, Open: 1}},
		{"Dispatched", func(w *syncproto.Warning) {
			w.Status, w.DispatchedAt = syncproto.WarningDispatched, timePtr(warnedAt)
		}, syncproto.Counts{Received: 1, Dispatched: 1, Open: 1}},
		{"Assigned", func(w *syncproto.Warning) {
			w.Status, w.DispatchedAt, w.AssignedAt = syncproto.WarningAssigned, timePtr(warnedAt), timePtr(warnedAt)
		}, syncproto.Counts{Received: 1, Dispatched: 1, Assigned: 1, Open: 1}},
		{"ReturnedToTheTownshipStaysAssigned", func(w *syncproto.Warning) {
			w.Status, w.Assignee, w.AssignedAt = syncproto.WarningDispatched, "", timePtr(warnedAt)
		}, syncproto.Counts{Received: 1, Assigned: 1, Open: 1}},
		{"UnreachedAttempt", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningInProgress, syncproto.OutcomeUnreachable
			w.Attempts = []syncproto.Attempt{attempt(syncproto.OutcomeUnreachable, false, 0)}
		}, syncproto.Counts{Received: 1, Unreachable: 1, Open: 1}},
		{"ReachedOnceIsReached", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningInProgress, syncproto.OutcomeUnreachable
			w.Attempts = []syncproto.Attempt{attempt(syncproto.OutcomeRefused, true, 0), attempt(syncproto.OutcomeUnreachable, false, 0)}
		}, syncproto.Counts{Received: 1, Reached: 1, Unreachable: 1, Open: 1}},
		{"Refused", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningInProgress, syncproto.OutcomeRefused
		}, syncproto.Counts{Received: 1, Refused: 1, Open: 1}},
		{"Dissuaded", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeDissuaded
		}, syncproto.Counts{Received: 1, Dissuaded: 1, Resolved: 1}},
		{"NotTarget", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeNotTarget
		}, syncproto.Counts{Received: 1, NotTarget: 1, Resolved: 1}},
		{"ClosedIsAlsoResolved", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningClosed, syncproto.OutcomeDissuaded
		}, syncproto.Counts{Received: 1, Dissuaded: 1, Resolved: 1, Closed: 1}},
		{"LossOfTheLatestReport", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeAlreadyDefrauded
			w.Attempts = []syncproto.Attempt{
				attempt(syncproto.OutcomeAlreadyDefrauded, true, 500_000),
				attempt(syncproto.OutcomeAlreadyDefrauded, true, 320_000),
				attempt(syncproto.OutcomeUnreachable, false, 0),
			}
		}, syncproto.Counts{Received: 1, Reached: 1, AlreadyDefrauded: 1, LossFen: 320_000, Resolved: 1}},
		{"LossOnlyWhileDefrauded", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeNotTarget
			w.Attempts = []syncproto.Attempt{attempt(syncproto.OutcomeAlreadyDefrauded, true, 500_000), attempt(syncproto.OutcomeNotTarget, true, 0)}
		}, syncproto.Counts{Received: 1, Reached: 1, NotTarget: 1, Resolved: 1}},
		{"Minutes", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeDissuaded
			w.FirstContactAt = timePtr(warnedAt.Add(40*time.Minute + 59*time.Second))
			w.ResolvedAt = timePtr(warnedAt.Add(2 * time.Hour))
		}, syncproto.Counts{Received: 1, Dissuaded: 1, Resolved: 1,
			FirstContact: map[int64]int64{40: 1}, Resolution: map[int64]int64{120: 1}}},
		{"MinutesToClosing", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningClosed, syncproto.OutcomeDissuaded
			w.ResolvedAt, w.ClosedAt = timePtr(warnedAt.Add(2*time.Hour)), timePtr(warnedAt.Add(5*time.Hour+30*time.Second))
		}, syncproto.Counts{Received: 1, Dissuaded: 1, Resolved: 1, Closed: 1,
			Resolution: map[int64]int64{120: 1}, Closing: map[int64]int64{300: 1}}},
		{"NoClosingOnceReturned", func(w *syncproto.Warning) {
			w.Status, w.ClosedAt = syncproto.WarningInProgress, timePtr(warnedAt.Add(time.Hour))
		}, syncproto.Counts{Received: 1, Open: 1}},
		{"MinutesNeverNegative", func(w *syncproto.Warning) {
			w.Status, w.Outcome = syncproto.WarningResolved, syncproto.OutcomeDissuaded
			w.FirstContactAt, w.ResolvedAt = timePtr(warnedAt.Add(-time.Hour)), timePtr(warnedAt.Add(-time.Minute))
		}, syncproto.Counts{Received: 1, Dissuaded: 1, Resolved: 1,
			FirstContact: map[int64]int64{0: 1}, Resolution: map[int64]int64{0: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWarning(syncproto.WarningNew, townUnit, "")
			w.DispatchedAt, w.AssignedAt = nil, nil
			tc.edit(w)
			assertEqual(t, tc.want, syncproto.Contribution(w))
		})
	}
}

// TestCounts_Scalars: every count of Counts is in Scalars, each once, so
// that none is left out of a sum or of what the server stores.
func TestCounts_Scalars(t *testing.T) {
	var c syncproto.Counts
	v := reflect.ValueOf(&c).Elem()
	listed := map[*int64]bool{}
	for _, p := range c.Scalars() {
		if listed[p] {
			t.Fatal("a count is listed twice")
		}
		listed[p] = true
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Int64 {
			continue
		}
		if !listed[f.Addr().Interface().(*int64)] {
			t.Errorf("count %s is not in Scalars", v.Type().Field(i).Name)
		}
		delete(listed, f.Addr().Interface().(*int64))
	}
	if len(listed) != 0 {
		t.Errorf("Scalars lists %d pointers that are not counts of c", len(listed))
	}
}

// TestCounts_AddSaturates: a unit's figures are sums of what each of its
// warnings contributes. Two losses of 2^63-1 fen once summed to -2; a sum
// must stop at the int64 limits instead of turning into a number of the
// other sign, whichever way it is moved.
func TestCounts_AddSaturates(t *testing.T) {
	t.Run("TwoHugeLosses", func(t *testing.T) {
		var total syncproto.Counts
		huge := syncproto.Counts{Received: 1, AlreadyDefrauded: 1, LossFen: math.MaxInt64}
		total.Add(&huge, 1)
		total.Add(&huge, 1)
		if total.LossFen != math.MaxInt64 || total.Received != 2 {
			t.Fatalf("loss %d, received %d; want the loss held at %d", total.LossFen, total.Received, int64(math.MaxInt64))
		}
	})
	t.Run("HalfOfTheRangeTwice", func(t *testing.T) {
		// The attack as it was sent: 2^62 fen on two warnings.
		total := syncproto.Counts{LossFen: 5_050_700}
		half := syncproto.Counts{LossFen: 1 << 62}
		total.Add(&half, 1)
		total.Add(&half, 1)
		if total.LossFen != math.MaxInt64 {
			t.Fatalf("loss %d, want %d", total.LossFen, int64(math.MaxInt64))
		}
	})
	t.Run("TakenOutBelowTheFloor", func(t *testing.T) {
		total := syncproto.Counts{LossFen: math.MinInt64 + 1}
		two := syncproto.Counts{LossFen: 2}
		total.Add(&two, -1)
		if total.LossFen != math.MinInt64 {
			t.Fatalf("loss %d, want %d", total.LossFen, int64(math.MinInt64))
		}
	})
	t.Run("OrdinarySumsAreExact", func(t *testing.T) {
		total := syncproto.Counts{LossFen: 5_050_700, Open: 3}
		c := syncproto.Counts{LossFen: 1_000_000_000_000, Open: 1}
		total.Add(&c, 1)
		total.Add(&c, -1)
		total.Add(&c, 1)
		if total.LossFen != 1_000_005_050_700 || total.Open != 4 {
			t.Fatalf("loss %d, open %d", total.LossFen, total.Open)
		}
	})
}

// TestCounts_AddEdges: a count plus or minus another, at the edges of the
// int64 range, for every scalar count alike.
func TestCounts_AddEdges(t *testing.T) {
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
		var c, o syncproto.Counts
		for _, n := range c.Scalars() {
			*n = tc.a
		}
		for _, n := range o.Scalars() {
			*n = tc.b
		}
		c.Add(&o, tc.sign)
		for i, n := range c.Scalars() {
			if *n != tc.want {
				t.Errorf("count %d: %d + %d × %d = %d, want %d", i, tc.a, tc.sign, tc.b, *n, tc.want)
			}
		}
	}
}

// TestCounts_AddHistograms: histograms add minute by minute and drop a
// minute whose count comes to zero.
func TestCounts_AddHistograms(t *testing.T) {
	var c syncproto.Counts
	a := syncproto.Counts{FirstContact: map[int64]int64{40: 1}, Resolution: map[int64]int64{120: 1}}
	b := syncproto.Counts{FirstContact: map[int64]int64{40: 1, 55: 1}}
	c.Add(&a, 1)
	c.Add(&b, 1)
	assertEqual(t, map[int64]int64{40: 2, 55: 1}, c.FirstContact)
	c.Add(&a, -1)
	assertEqual(t, map[int64]int64{40: 1, 55: 1}, c.FirstContact)
	assertEqual(t, map[int64]int64{}, c.Resolution)
	if a.FirstContact[40] != 1 || len(b.FirstContact) != 2 {
		t.Fatal("Add changed what it added")
	}
}

func TestCounts_Equal(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b syncproto.Counts
		want bool
	}{
		{"Zero", syncproto.Counts{}, syncproto.Counts{}, true},
		{"NilAndEmptyHistograms", syncproto.Counts{FirstContact: map[int64]int64{}}, syncproto.Counts{}, true},
		{"AScalar", syncproto.Counts{Open: 1}, syncproto.Counts{}, false},
		{"AMinute", syncproto.Counts{Resolution: map[int64]int64{3: 1}}, syncproto.Counts{Resolution: map[int64]int64{4: 1}}, false},
		{"ACount", syncproto.Counts{Resolution: map[int64]int64{3: 1}}, syncproto.Counts{Resolution: map[int64]int64{3: 2}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Equal(&tc.b); got != tc.want {
				t.Fatalf("Equal = %v, want %v", got, tc.want)
			}
			if got := tc.b.Equal(&tc.a); got != tc.want {
				t.Fatalf("Equal the other way = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCounts_Figures: the figures of a sum, with the closure rate and
// nearest-rank quantiles of the minutes.
func TestCounts_Figures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       syncproto.Counts
		overdue int64
		want    syncproto.Figures
	}{
		{"Nothing", syncproto.Counts{}, 0, syncproto.Figures{}},
		{"Counts", syncproto.Counts{Received: 4, Dispatched: 4, Assigned: 3, Reached: 2, Dissuaded: 1, AlreadyDefrauded: 1,
			LossFen: 320_000, NotTarget: 1, Unreachable: 1, Refused: 0, Resolved: 2, Closed: 1, Open: 2}, 1,
			syncproto.Figures{Received: 4, Dispatched: 4, Assigned: 3, Reached: 2, Dissuaded: 1, AlreadyDefrauded: 1,
				LossFen: 320_000, NotTarget: 1, Unreachable: 1, Resolved: 2, Closed: 1, Overdue: 1, ClosureRate: 0.25}},
		{"OneMinute", syncproto.Counts{Received: 1, FirstContact: map[int64]int64{7: 1}}, 0,
			syncproto.Figures{Received: 1, FirstContact: syncproto.Quantiles{N: 1, Median: 7, P90: 7}}},
		{"NearestRank", syncproto.Counts{Received: 10, Closed: 10,
			FirstContact: map[int64]int64{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1},
			Resolution:   map[int64]int64{30: 3, 60: 1, 240: 1}}, 0,
			syncproto.Figures{Received: 10, Closed: 10, ClosureRate: 1,
				FirstContact: syncproto.Quantiles{N: 10, Median: 5, P90: 9},
				Resolution:   syncproto.Quantiles{N: 5, Median: 30, P90: 240}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertEqual(t, tc.want, tc.c.Figures(tc.overdue))
		})
	}
}

func TestIsOverdue(t *testing.T) {
	deadline := warnedAt.Add(2 * time.Hour)
	for _, tc := range []struct {
		status string
		now    time.Time
		want   bool
	}{
		{syncproto.WarningNew, deadline.Add(time.Second), true},
		{syncproto.WarningDispatched, deadline.Add(time.Second), true},
		{syncproto.WarningAssigned, deadline.Add(time.Second), true},
		{syncproto.WarningInProgress, deadline.Add(time.Second), true},
		{syncproto.WarningInProgress, deadline, false},
		{syncproto.WarningResolved, deadline.Add(time.Hour), false},
		{syncproto.WarningClosed, deadline.Add(time.Hour), false},
	} {
		if got := syncproto.IsOverdue(tc.status, deadline, tc.now); got != tc.want {
			t.Errorf("IsOverdue(%s, %s past the deadline) = %v, want %v", tc.status, tc.now.Sub(deadline), got, tc.want)
		}
		w := newWarning(tc.status, villageTwo, "")
		w.Deadline = deadline
		if got := w.Overdue(tc.now); got != tc.want {
			t.Errorf("Warning.Overdue(%s, %s past the deadline) = %v, want %v", tc.status, tc.now.Sub(deadline), got, tc.want)
		}
	}
}
