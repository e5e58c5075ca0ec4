package demo

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Event is one thing that happened in the demo city: the center importing
// a batch of the feed, or one person's op on one warning. Seed writes each
// with the store's clock at At, through the store's own write path, so
// the statistics, indexes and histories are those the server would keep.
type Event struct {
	// At is when the server received it.
	At time.Time
	// Actor is the username of who made it.
	Actor string
	// Feed is the rows the center imports at At; nil for an op.
	Feed []syncproto.FeedWarning
	// Warning is the external id of the warning an op is about.
	Warning string
	// Op is the op: its Type, At (the phone's time, never after the
	// event's) and Body, whose Assignee is a username. Seed gives it its
	// id, client_seq, warning id, base version and attempt id, and the
	// assignee's user id.
	Op syncproto.Op
}

// importEvery is how often the center imports the national platform's
// feed: a warning reaches the server within this of its warned_at.
const importEvery = 15 * time.Minute

// cityShare is the share of warnings the platform addresses to the city
// only, for the center to dispatch: Warnings addresses none there.
const cityShare = 0.03

// History returns the demo city's last days days of work, today so far
// included, as events in time order: about perDay warnings a day (more on
// weekdays, fewer at weekends, a few days of a scam wave), each imported
// within importEvery of its warned_at and worked as a county works them
// (see life.go). Nothing after now happens, so today's and the last days'
// warnings are caught in every state: new, waiting to be assigned, in
// progress, waiting for review. Deadlines are the server's default policy
// (syncproto.DefaultDeadlines); a warning is never overdue when it
// arrives, and only a few go overdue later (unreachable people, a cadre
// late now and then). The history is deterministic for its arguments.
func History(tree *Tree, now time.Time, days, perDay int, seed int64) []Event {
	if days < 1 || perDay < 1 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x686973746f7279))                           // "history"
	h := newHistory(tree, now, r, rand.New(rand.NewPCG(uint64(seed), 0x616e7377657273))) // "answers"
	today := syncproto.DayStart(now)
	first := today.AddDate(0, 0, 1-days)
	counts := DailyCounts(first, days, perDay, seed)
	imports := map[time.Time][]syncproto.FeedWarning{}
	for i, n := range counts {
		day := first.AddDate(0, 0, i)
		end := day // midnight: the whole day
		if i == days-1 {
			// Today's feed so far: the share of a day's warnings that the
			// hours up to now bring.
			if n = int(math.Round(float64(n) * dayShare(now.Sub(today)))); n == 0 && now.After(today) {
				n = 1
			}
			end = now
		}
		rows, homes := feedDay(tree, end, n, seed+int64(i)*7919)
		for j := range rows {
			f := &rows[j]
			if r.Float64() < cityShare {
				f.Unit = CityCode
			}
			at := earliest(f.WarnedAt.Truncate(importEvery).Add(importEvery), now)
			imports[at] = append(imports[at], *f)
			h.live(*f, homes[j], at)
		}
	}
	for at, rows := range imports {
		h.events = append(h.events, Event{At: at, Actor: CenterUsername, Feed: rows})
	}
	// A warning's own events are at least a minute apart and after its
	// import, so ordering by time keeps each warning's story in order;
	// ties between warnings are broken by the order of their creation to
	// keep the history deterministic.
	slices.SortStableFunc(h.events, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		// An import before the ops at the same time: they may be about it.
		return boolInt(a.Feed == nil) - boolInt(b.Feed == nil)
	})
	return h.events
}

// DailyCounts is how many warnings each of days days from first brings in
// History, about perDay on average: weekdays busier than weekends, some
// noise, and a scam wave (a day at one and a half to twice the usual) in
// about one day of ten. The last day is whole: History takes today's
// share of it.
func DailyCounts(first time.Time, days, perDay int, seed int64) []int {
	r := rand.New(rand.NewPCG(uint64(seed), 0x64617973)) // "days"
	counts := make([]int, days)
	for i := range counts {
		f := 1.12 // Monday to Friday: 5 x 1.12 + 0.8 + 0.7 is about 7
		switch first.AddDate(0, 0, i).Weekday() {
		case time.Saturday:
			f = 0.8
		case time.Sunday:
			f = 0.7
		}
		f *= 0.85 + 0.3*r.Float64()
		if r.IntN(10) == 0 {
			f *= 1.5 + 0.5*r.Float64()
		}
		counts[i] = max(1, int(math.Round(float64(perDay)*f)))
	}
	return counts
}

// dayShare is the share of a day's warnings that come in its first span,
// by hourWeights.
func dayShare(span time.Duration) float64 {
	var in, total float64
	for h, w := range hourWeights {
		in += w * hourPart(h, span)
		total += w
	}
	return in / total
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// earliest and latest are min and max of two times.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
