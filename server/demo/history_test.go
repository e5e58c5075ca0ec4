package demo_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

// historyNow is the moment the tests' histories end: a Friday afternoon,
// Beijing time, so today has a day's work under way.
var historyNow = time.Date(2026, 11, 27, 16, 0, 0, 0, syncproto.Beijing)

// historyMorning is a Friday before the county's office opens: the
// requests for help of the night wait in its queue.
var historyMorning = time.Date(2026, 11, 27, 9, 0, 0, 0, syncproto.Beijing)

const (
	historyDays   = 30
	historyPerDay = 40
)

func history(t *testing.T) []demo.Event {
	t.Helper()
	return demo.History(demo.City(1), historyNow, historyDays, historyPerDay, 1)
}

// imported lists the rows of a history's imports, each with the time it
// was imported.
func imported(events []demo.Event) map[string]time.Time {
	at := map[string]time.Time{}
	for _, e := range events {
		for _, f := range e.Feed {
			at[f.ExternalID] = e.At
		}
	}
	return at
}

func feedRows(events []demo.Event) []syncproto.FeedWarning {
	var rows []syncproto.FeedWarning
	for _, e := range events {
		rows = append(rows, e.Feed...)
	}
	return rows
}

func TestHistory_Deterministic(t *testing.T) {
	a, b := history(t), history(t)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("two histories of one seed differ (-first +second):\n%s", diff)
	}
	other := demo.History(demo.City(1), historyNow, historyDays, historyPerDay, 2)
	if cmp.Equal(a, other) {
		t.Fatal("seeds 1 and 2 made the same history")
	}
}

func TestHistory_TimeOrder(t *testing.T) {
	events := history(t)
	at := imported(events)
	for i, e := range events {
		if i > 0 && e.At.Before(events[i-1].At) {
			t.Fatalf("event %d at %s comes after one at %s", i, e.At, events[i-1].At)
		}
		if e.At.After(historyNow) {
			t.Fatalf("event %d at %s is after now %s", i, e.At, historyNow)
		}
		if e.Feed != nil {
			for _, f := range e.Feed {
				if f.WarnedAt.After(e.At) {
					t.Fatalf("%s imported at %s before it was warned at %s", f.ExternalID, e.At, f.WarnedAt)
				}
			}
			continue
		}
		if imp, ok := at[e.Warning]; !ok || !e.At.After(imp) {
			t.Fatalf("event %d, %s on %s at %s, is not after its import (%s)", i, e.Op.Type, e.Warning, e.At, imp)
		}
		if e.Op.At.After(e.At) {
			t.Fatalf("event %d: made at %s, after the server received it at %s", i, e.Op.At, e.At)
		}
	}
}

func TestHistory_Days(t *testing.T) {
	perDay := map[string]int{}
	for _, f := range feedRows(history(t)) {
		perDay[syncproto.FormatDay(syncproto.DayOf(f.WarnedAt))]++
	}
	first := historyNow.AddDate(0, 0, 1-historyDays)
	for d := range historyDays {
		day := first.AddDate(0, 0, d).Format(time.DateOnly)
		if perDay[day] == 0 {
			t.Errorf("day %s has no warnings", day)
		}
	}
	if len(perDay) != historyDays {
		t.Fatalf("warnings on %d days, want %d: %v", len(perDay), historyDays, perDay)
	}
	var weekday, weekend []int
	for day, n := range perDay {
		d, _ := time.Parse(time.DateOnly, day)
		if day == historyNow.Format(time.DateOnly) {
			continue // today so far
		}
		if w := d.Weekday(); w == time.Saturday || w == time.Sunday {
			weekend = append(weekend, n)
		} else {
			weekday = append(weekday, n)
		}
	}
	counts := slices.Sorted(maps.Values(perDay))
	if counts[len(counts)-1] < 3*historyPerDay/2 || counts[1] > 4*historyPerDay/5 {
		t.Errorf("days are too even for a month with busy and quiet days: %v", counts)
	}
	if mean(weekday) <= mean(weekend) {
		t.Errorf("weekdays bring %.1f warnings on average, weekends %.1f: weekdays should be busier", mean(weekday), mean(weekend))
	}
}

func mean(xs []int) float64 {
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return float64(sum) / float64(len(xs))
}

// Every warning arrives before its deadline, by the server's default
// policy, which the demo uses.
func TestHistory_NotOverdueOnArrival(t *testing.T) {
	events := history(t)
	at := imported(events)
	for _, f := range feedRows(events) {
		deadline := f.WarnedAt.Add(syncproto.DefaultDeadlines[f.Risk])
		if !at[f.ExternalID].Before(deadline) {
			t.Errorf("%s (%s risk, warned %s) imported at %s, past its deadline %s", f.ExternalID, f.Risk, f.WarnedAt, at[f.ExternalID], deadline)
		}
	}
}

func TestHistory_Work(t *testing.T) {
	kinds := map[string]int{}
	for _, e := range history(t) {
		if e.Feed != nil {
			continue
		}
		b := e.Op.Body
		kind := e.Op.Type
		switch e.Op.Type {
		case syncproto.OpRecorded:
			kind += " " + b.Outcome
			if (b.LossFen > 0) != (b.Outcome == syncproto.OutcomeAlreadyDefrauded) {
				t.Fatalf("attempt %s with a loss of %d fen", b.Outcome, b.LossFen)
			}
		case syncproto.OpReviewed:
			kind += " " + b.Decision
			if b.Decision == syncproto.DecisionReturn && b.Comment == "" {
				t.Fatalf("a return of %s without a reason", e.Warning)
			}
		case syncproto.OpEscalated:
			if b.Reason == "" {
				t.Fatalf("an escalation of %s without a reason", e.Warning)
			}
		case syncproto.OpAnswered:
			if b.Answer == "" {
				t.Fatalf("an answer to %s with no text", e.Warning)
			}
		}
		kinds[kind]++
	}
	for _, want := range []string{
		syncproto.OpDispatched, syncproto.OpAssigned, syncproto.OpEscalated, syncproto.OpAnswered,
		syncproto.OpRecorded + " " + syncproto.OutcomeDissuaded,
		syncproto.OpRecorded + " " + syncproto.OutcomeAlreadyDefrauded,
		syncproto.OpRecorded + " " + syncproto.OutcomeNotTarget,
		syncproto.OpRecorded + " " + syncproto.OutcomeUnreachable,
		syncproto.OpRecorded + " " + syncproto.OutcomeRefused,
		syncproto.OpReviewed + " " + syncproto.DecisionApprove,
		syncproto.OpReviewed + " " + syncproto.DecisionReturn,
	} {
		if kinds[want] == 0 {
			t.Errorf("no %s in a month of history: %v", want, kinds)
		}
	}
}

// TestHistory_Escalations: the county answers most requests for help, a
// few hours of office hours after them, so that on a morning its queue
// holds the requests of the night and nothing older than a day.
func TestHistory_Escalations(t *testing.T) {
	events := demo.History(demo.City(1), historyMorning, historyDays, historyPerDay, 1)
	asked := map[string]demo.Event{}
	answered := 0
	for _, e := range events {
		switch e.Op.Type {
		case syncproto.OpEscalated:
			if _, twice := asked[e.Warning]; twice {
				t.Fatalf("%s escalated twice", e.Warning)
			}
			asked[e.Warning] = e
		case syncproto.OpAnswered:
			q, ok := asked[e.Warning]
			if !ok {
				t.Fatalf("%s answered at %s with no request for help before", e.Warning, e.At)
			}
			delete(asked, e.Warning)
			answered++
			// The cadre-<village>-k's county is county-<county>.
			county := strings.TrimPrefix(e.Actor, "county-")
			if county == e.Actor || !strings.HasPrefix(strings.TrimPrefix(q.Actor, "cadre-"), county) {
				t.Errorf("%s: %s answers %s's request", e.Warning, e.Actor, q.Actor)
			}
			local := e.At.In(syncproto.Beijing)
			if minutes := local.Hour()*60 + local.Minute(); minutes < 8*60+30 || minutes >= 18*60 {
				t.Errorf("%s answered at %s, outside office hours", e.Warning, local)
			}
			if wait := e.At.Sub(q.At); wait < time.Hour || wait > 24*time.Hour {
				t.Errorf("%s answered %s after the request", e.Warning, wait)
			}
			if !e.Op.At.Equal(e.At) {
				t.Errorf("%s: the answer made at %s, received at %s", e.Warning, e.Op.At, e.At)
			}
		}
	}
	if len(asked) == 0 || answered < 10*len(asked) {
		t.Fatalf("%d requests answered and %d open: want most answered and some waiting", answered, len(asked))
	}
	for w, q := range asked {
		if historyMorning.Sub(q.At) > 24*time.Hour {
			t.Errorf("%s asked for help at %s and is still waiting at %s", w, q.At, historyMorning)
		}
	}
}
