package demo_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// seedPerDay keeps the seeded month small: the test is about what the
// server makes of it, not its size.
const seedPerDay = 12

// seeded starts a server whose store holds a month of the demo city's
// history up to historyNow, written by demo.Seed, with the clock then at
// historyNow; and signs the center in.
func seeded(t *testing.T) (*servertest.Server, *servertest.Device, []demo.Event) {
	t.Helper()
	tree := demo.City(1)
	events := demo.History(tree, historyNow, historyDays, seedPerDay, 1)
	clock := demo.NewClock(events[0].At.Add(-time.Hour))
	s := servertest.Start(t, servertest.Options{Now: clock.Now})
	if err := demo.Seed(context.Background(), s.Store, clock, tree, events); err != nil {
		t.Fatalf("seed: %v", err)
	}
	clock.Set(historyNow)
	return s, s.Login(t, demo.CenterUsername, demo.CenterPassword), events
}

// pullWarnings pulls everything the device may see and returns the
// warnings.
func pullWarnings(t *testing.T, d *servertest.Device) []*syncproto.Warning {
	t.Helper()
	var out []*syncproto.Warning
	cursor := ""
	for range 1000 {
		resp, err := d.Pull(context.Background(), syncproto.PullRequest{DeviceID: d.ID, Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		for _, ch := range resp.Changes {
			if w, ok := ch.Data.(*syncproto.Warning); ok && ch.Kind == syncproto.ChangePut {
				out = append(out, w)
			}
		}
		if cursor = resp.Cursor; !resp.More {
			return out
		}
	}
	t.Fatal("pull never finished")
	return nil
}

func TestSeed(t *testing.T) {
	_, center, events := seeded(t)
	warnings := pullWarnings(t, center)
	if rows := len(feedRows(events)); len(warnings) != rows {
		t.Fatalf("the center pulled %d warnings of the %d imported", len(warnings), rows)
	}

	t.Run("Stats", func(t *testing.T) {
		from := historyNow.AddDate(0, 0, 1-historyDays).Format(time.DateOnly)
		var st syncproto.StatsResponse
		path := fmt.Sprintf("/v1/stats?from=%s&to=%s", from, historyNow.Format(time.DateOnly))
		if err := center.Do(context.Background(), http.MethodGet, path, nil, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Daily) != historyDays {
			t.Fatalf("%d days of figures, want %d", len(st.Daily), historyDays)
		}
		busy := 0
		for _, d := range st.Daily {
			if f := d.Figures; f.Received > 0 && f.Dispatched > 0 && f.Dissuaded > 0 {
				busy++
			}
		}
		if busy < historyDays*4/5 {
			t.Errorf("only %d of %d days received, dispatched and dissuaded: %+v", busy, historyDays, st.Daily)
		}
		f := st.Total
		if f.Received != int64(len(warnings)) || f.AlreadyDefrauded == 0 || f.LossFen == 0 || f.NotTarget == 0 ||
			f.Unreachable == 0 || f.Closed == 0 || f.FirstContact.N == 0 || f.Resolution.N == 0 {
			t.Errorf("a month of figures leaves some empty: %+v", f)
		}
	})

	t.Run("Outcomes", func(t *testing.T) {
		outcomes := map[string]int{}
		returned, escalated := 0, 0
		for _, w := range warnings {
			for _, a := range w.Attempts {
				outcomes[a.Outcome]++
			}
			for _, r := range w.Reviews {
				if r.Decision == syncproto.DecisionReturn {
					returned++
				}
			}
			if w.Escalated {
				escalated++
			}
			if len(w.Flags) > 0 {
				t.Errorf("warning %s has flags %+v: the history's work is clean", w.ExternalID, w.Flags)
			}
		}
		for _, o := range []string{syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget,
			syncproto.OutcomeUnreachable, syncproto.OutcomeRefused} {
			if outcomes[o] == 0 {
				t.Errorf("no attempt ended %s: %v", o, outcomes)
			}
		}
		if returned == 0 || escalated == 0 {
			t.Errorf("%d returns and %d escalations in a month", returned, escalated)
		}
	})

	t.Run("Overdue", func(t *testing.T) {
		overdue := 0
		for _, w := range warnings {
			if !w.ReceivedAt.Before(w.Deadline) {
				t.Errorf("%s arrived at %s, past its deadline %s", w.ExternalID, w.ReceivedAt, w.Deadline)
			}
			if w.Overdue(historyNow) {
				overdue++
			}
		}
		if overdue > len(warnings)/20 {
			t.Errorf("%d of %d warnings overdue: the demo's work is mostly on time", overdue, len(warnings))
		}
	})

	// Today a lead has work waiting: warnings to assign or reach, and
	// work to review.
	t.Run("Today", func(t *testing.T) {
		today := syncproto.DayOf(historyNow)
		status := map[string]int{}
		for _, w := range warnings {
			if syncproto.DayOf(w.WarnedAt) == today {
				status[w.Status]++
			}
		}
		if status[syncproto.WarningResolved] == 0 || status[syncproto.WarningAssigned]+status[syncproto.WarningDispatched]+status[syncproto.WarningNew] == 0 {
			t.Errorf("today's warnings by status: %v, want some waiting for review and some for work", status)
		}
	})
}
