package syncproto

import (
	"math"
	"slices"
	"time"
)

// What the statistics count (GET /v1/stats, Figures). The server keeps
// them in its write path: each warning contributes Counts to its unit's
// Beijing day (DayOf its warned_at) and to every unit above, and each time
// a warning changes its old contribution is taken out and its new one
// added. The rules of what a warning contributes, how contributions sum
// and how a sum becomes Figures are here; where the sums are kept is the
// store's.

// Counts are what one warning contributes to its unit's day, and what the
// statistics of a unit and day hold: the sum of their warnings'
// contributions. FirstContact, Resolution and Closing are exact
// histograms, whole minutes from warned_at to the count of warnings that
// took them.
type Counts struct {
	Received         int64
	Dispatched       int64
	Assigned         int64
	Reached          int64
	Dissuaded        int64
	AlreadyDefrauded int64
	LossFen          int64
	NotTarget        int64
	Unreachable      int64
	Refused          int64
	Resolved         int64
	Closed           int64
	// Open counts warnings neither resolved nor closed. Overdue depends on
	// the clock, so it is not counted: it is the open warnings whose
	// deadline has passed, found when the figures are read.
	Open         int64
	FirstContact map[int64]int64
	Resolution   map[int64]int64
	// Closing is the minutes from warned_at to closed_at (the review that
	// approved the outcome), of the warnings closed.
	Closing map[int64]int64
}

// Scalars lists the scalar counts in a fixed order, which the server
// stores them in: a new count goes at the end.
func (c *Counts) Scalars() []*int64 {
	return []*int64{&c.Received, &c.Dispatched, &c.Assigned, &c.Reached, &c.Dissuaded, &c.AlreadyDefrauded,
		&c.LossFen, &c.NotTarget, &c.Unreachable, &c.Refused, &c.Resolved, &c.Closed, &c.Open}
}

// Contribution is what w adds to its unit's day: it is received; it counts
// as dispatched and assigned once it ever was, as reached once any attempt
// reached the person, under its current outcome, as resolved while
// resolved or closed, as closed while closed and as open otherwise. Its
// loss is that of the latest attempt that reported one, and counts only
// while the outcome is already_defrauded. Its minutes to first contact and
// to resolution go into the histograms once it has them, and its minutes
// to closing while it is closed.
func Contribution(w *Warning) Counts {
	c := Counts{Received: 1}
	if w.DispatchedAt != nil {
		c.Dispatched = 1
	}
	if w.AssignedAt != nil {
		c.Assigned = 1
	}
	for _, a := range w.Attempts {
		if a.Reached {
			c.Reached = 1
		}
		if a.Outcome == OutcomeAlreadyDefrauded {
			c.LossFen = a.LossFen
		}
	}
	switch w.Outcome {
	case OutcomeDissuaded:
		c.Dissuaded = 1
	case OutcomeAlreadyDefrauded:
		c.AlreadyDefrauded = 1
	case OutcomeNotTarget:
		c.NotTarget = 1
	case OutcomeUnreachable:
		c.Unreachable = 1
	case OutcomeRefused:
		c.Refused = 1
	}
	if w.Outcome != OutcomeAlreadyDefrauded {
		c.LossFen = 0
	}
	if !IsOpen(w.Status) {
		c.Resolved = 1
	}
	if w.Status == WarningClosed {
		c.Closed = 1
	}
	if IsOpen(w.Status) {
		c.Open = 1
	}
	if w.FirstContactAt != nil {
		c.FirstContact = map[int64]int64{minutes(w.WarnedAt, *w.FirstContactAt): 1}
	}
	if w.ResolvedAt != nil {
		c.Resolution = map[int64]int64{minutes(w.WarnedAt, *w.ResolvedAt): 1}
	}
	if w.ClosedAt != nil && w.Status == WarningClosed {
		c.Closing = map[int64]int64{minutes(w.WarnedAt, *w.ClosedAt): 1}
	}
	return c
}

// IsOpen reports whether a warning in status still waits for its outcome:
// it is neither resolved nor closed.
func IsOpen(status string) bool {
	return status != WarningResolved && status != WarningClosed
}

// IsOverdue reports whether a warning in status with deadline is still
// open after its deadline at now.
func IsOverdue(status string, deadline, now time.Time) bool {
	return IsOpen(status) && now.After(deadline)
}

// minutes is the whole minutes from a warning to a later moment, never
// negative.
func minutes(from, to time.Time) int64 {
	return max(int64(to.Sub(from)/time.Minute), 0)
}

// Add adds sign times o to c. The scalar counts saturate instead of
// wrapping: validation bounds what each warning contributes (a loss is at
// most MaxLossFen), so no honest sum comes near the int64 limits, and
// should one ever get there (a store holding losses recorded before that
// bound) an official figure stops at the limit rather than turning into a
// large number of the other sign. A histogram keeps no minute whose count
// comes to zero.
func (c *Counts) Add(o *Counts, sign int64) {
	own, other := c.Scalars(), o.Scalars()
	for i, n := range own {
		*n = addSaturating(*n, *other[i], sign)
	}
	c.FirstContact = addHist(c.FirstContact, o.FirstContact, sign)
	c.Resolution = addHist(c.Resolution, o.Resolution, sign)
	c.Closing = addHist(c.Closing, o.Closing, sign)
}

// addSaturating is a + b when sign is positive and a - b when it is not,
// clamped to the int64 range.
func addSaturating(a, b, sign int64) int64 {
	if sign < 0 {
		if b == math.MinInt64 {
			// -b does not exist; a - MinInt64 is at least a + MaxInt64.
			if a >= 0 {
				return math.MaxInt64
			}
			return a + math.MaxInt64 + 1
		}
		b = -b
	}
	sum := a + b
	switch {
	case a > 0 && b > 0 && sum < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && sum >= 0:
		return math.MinInt64
	}
	return sum
}

func addHist(h, o map[int64]int64, sign int64) map[int64]int64 {
	for k, v := range o {
		if h == nil {
			h = map[int64]int64{}
		}
		h[k] += sign * v
		if h[k] == 0 {
			delete(h, k)
		}
	}
	return h
}

// Equal reports whether c and o hold the same counts; a nil histogram
// equals an empty one.
func (c *Counts) Equal(o *Counts) bool {
	return c.Received == o.Received && c.Dispatched == o.Dispatched && c.Assigned == o.Assigned &&
		c.Reached == o.Reached && c.Dissuaded == o.Dissuaded && c.AlreadyDefrauded == o.AlreadyDefrauded &&
		c.LossFen == o.LossFen && c.NotTarget == o.NotTarget && c.Unreachable == o.Unreachable &&
		c.Refused == o.Refused && c.Resolved == o.Resolved && c.Closed == o.Closed && c.Open == o.Open &&
		histEqual(c.FirstContact, o.FirstContact) && histEqual(c.Resolution, o.Resolution) &&
		histEqual(c.Closing, o.Closing)
}

func histEqual(a, b map[int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Figures are the figures of a sum of contributions, given how many of its
// open warnings are overdue: the counts as they are, the closure rate
// (closed over received, 0 when nothing was received) and the median and
// p90 of each histogram.
func (c *Counts) Figures(overdue int64) Figures {
	f := Figures{
		Received: c.Received, Dispatched: c.Dispatched, Assigned: c.Assigned, Reached: c.Reached,
		Dissuaded: c.Dissuaded, AlreadyDefrauded: c.AlreadyDefrauded, LossFen: c.LossFen, NotTarget: c.NotTarget,
		Unreachable: c.Unreachable, Refused: c.Refused, Resolved: c.Resolved, Closed: c.Closed, Overdue: overdue,
		FirstContact: quantiles(c.FirstContact), Resolution: quantiles(c.Resolution), Closing: quantiles(c.Closing),
	}
	if c.Received > 0 {
		f.ClosureRate = float64(c.Closed) / float64(c.Received)
	}
	return f
}

// quantiles are nearest-rank: the p-quantile is the smallest value whose
// cumulative count reaches ceil(p*n).
func quantiles(h map[int64]int64) Quantiles {
	keys := make([]int64, 0, len(h))
	var n int64
	for k, v := range h {
		keys = append(keys, k)
		n += v
	}
	if n == 0 {
		return Quantiles{}
	}
	slices.Sort(keys)
	rank := func(p float64) int64 {
		need := int64(p*float64(n) + 0.999999999)
		need = max(need, 1)
		var cum int64
		for _, k := range keys {
			cum += h[k]
			if cum >= need {
				return k
			}
		}
		return keys[len(keys)-1]
	}
	return Quantiles{N: n, Median: rank(0.5), P90: rank(0.9)}
}
