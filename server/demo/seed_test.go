package demo_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// seedPerDay keeps the seeded month small: the test is about what the
// server makes of it, not its size.
const seedPerDay = 12

// seeded starts a server whose store holds a month of the demo city's
// history up to now, written by demo.Seed, with the clock then at now;
// and signs the center in.
func seeded(t *testing.T, now time.Time) (*servertest.Server, *servertest.Device, []demo.Event) {
	t.Helper()
	tree := demo.City(1)
	events := demo.History(tree, now, historyDays, seedPerDay, 1)
	clock := demo.NewClock(events[0].At.Add(-time.Hour))
	s := servertest.Start(t, servertest.Options{Now: clock.Now})
	if err := demo.Seed(context.Background(), s.Store, clock, tree, events); err != nil {
		t.Fatalf("seed: %v", err)
	}
	clock.Set(now)
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
	_, center, events := seeded(t, historyNow)
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
			if len(w.Escalations) > 0 {
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

// TestSeed_Escalations: on a morning the server holds the requests for
// help the county answered, with its answer and its name for the cadre's
// phone, and the night's, still open: the county's queue
// (GET /v1/warnings?escalated=1) holds those and nothing older.
func TestSeed_Escalations(t *testing.T) {
	_, center, _ := seeded(t, historyMorning)
	tree := demo.City(1)
	var answered int
	open := map[string]bool{}
	for _, w := range pullWarnings(t, center) {
		for _, e := range w.Escalations {
			if !e.Answered() {
				open[w.ID] = true
				if !w.Escalated || historyMorning.Sub(e.At) > 24*time.Hour {
					t.Errorf("%s: a request of %s open at %s (escalated %v)", w.ExternalID, e.At, historyMorning, w.Escalated)
				}
				continue
			}
			answered++
			county, _ := tree.User(demo.CountyUsername(w.Unit[:6]))
			if e.Answer == "" || e.AnsweredByName != county.Name || !e.AnsweredAt.After(e.At) {
				t.Errorf("%s: the answer %q by %q at %s to a request of %s", w.ExternalID, e.Answer, e.AnsweredByName, e.AnsweredAt, e.At)
			}
		}
		if w.Escalated != open[w.ID] {
			t.Errorf("%s: escalated %v with open requests %v", w.ExternalID, w.Escalated, open[w.ID])
		}
	}
	if answered == 0 || len(open) == 0 || answered < len(open) {
		t.Fatalf("%d requests answered and %d open: want most answered and some waiting", answered, len(open))
	}
	var queue syncproto.WarningList
	if err := center.Do(context.Background(), http.MethodGet, "/v1/warnings?escalated=1&limit=500", nil, &queue); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, it := range queue.Items {
		listed[it.ID] = true
	}
	if fmt.Sprint(listed) != fmt.Sprint(open) {
		t.Errorf("the queue lists %v, the open requests are %v", listed, open)
	}
}

// TestSeed_CompactsDaily: the seeded month's scope indexes were compacted
// day by day, as a running server's are: one more compaction finds only
// the last day's superseded entries, where a month of them would be most
// of the index.
func TestSeed_CompactsDaily(t *testing.T) {
	s, _, events := seeded(t, historyNow)
	rep, err := s.Store.CompactIndex(context.Background(), store.DefaultTombstoneHorizon)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries == 0 || rep.Superseded*4 > rep.Entries {
		t.Errorf("a compaction after the seeding dropped %d superseded entries of %d (%d events seeded): the seeding left a month of them", rep.Superseded, rep.Entries, len(events))
	}
}
