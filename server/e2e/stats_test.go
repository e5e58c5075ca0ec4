package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

func beijingDay(t time.Time) string { return t.In(syncproto.Beijing).Format(time.DateOnly) }

// expectFigures computes a unit's figures straight from warning states, as
// the statistics must come out, without the server's statistics code.
func expectFigures(ws []*syncproto.Warning, now time.Time) syncproto.Figures {
	var f syncproto.Figures
	var contact, resolution, closing []int64
	for _, w := range ws {
		f.Received++
		if w.DispatchedAt != nil {
			f.Dispatched++
		}
		if w.AssignedAt != nil {
			f.Assigned++
		}
		reached, loss := false, int64(0)
		for _, a := range w.Attempts {
			reached = reached || a.Reached
			if a.Outcome == syncproto.OutcomeAlreadyDefrauded {
				loss = a.LossFen
			}
		}
		if reached {
			f.Reached++
		}
		switch w.Outcome {
		case syncproto.OutcomeDissuaded:
			f.Dissuaded++
		case syncproto.OutcomeAlreadyDefrauded:
			f.AlreadyDefrauded++
			f.LossFen += loss
		case syncproto.OutcomeNotTarget:
			f.NotTarget++
		case syncproto.OutcomeUnreachable:
			f.Unreachable++
		case syncproto.OutcomeRefused:
			f.Refused++
		}
		switch w.Status {
		case syncproto.WarningClosed:
			f.Closed++
			f.Resolved++
		case syncproto.WarningResolved:
			f.Resolved++
		default:
			if now.After(w.Deadline) {
				f.Overdue++
			}
		}
		if w.FirstContactAt != nil {
			contact = append(contact, int64(w.FirstContactAt.Sub(w.WarnedAt)/time.Minute))
		}
		if w.ResolvedAt != nil {
			resolution = append(resolution, int64(w.ResolvedAt.Sub(w.WarnedAt)/time.Minute))
		}
		if w.Status == syncproto.WarningClosed && w.ClosedAt != nil {
			closing = append(closing, int64(w.ClosedAt.Sub(w.WarnedAt)/time.Minute))
		}
	}
	if f.Received > 0 {
		f.ClosureRate = float64(f.Closed) / float64(f.Received)
	}
	f.FirstContact, f.Resolution, f.Closing = nearestRank(contact), nearestRank(resolution), nearestRank(closing)
	return f
}

func nearestRank(xs []int64) syncproto.Quantiles {
	if len(xs) == 0 {
		return syncproto.Quantiles{}
	}
	slices.Sort(xs)
	at := func(p float64) int64 {
		rank := int(p*float64(len(xs)) + 0.999999999)
		return xs[max(rank, 1)-1]
	}
	return syncproto.Quantiles{N: int64(len(xs)), Median: at(0.5), P90: at(0.9)}
}

// TestStats: every figure of the statistics equals the same figure
// recomputed from the warnings' states after a random day of work.
func TestStats(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(time.Now().UTC().Truncate(time.Second))
	c := newCity(t, syncproto.JSON, clock.Now)
	r := rand.New(rand.NewPCG(4110, 1))
	now := clock.Now()

	units := []string{unitVillA1, unitVillA2, unitVillB1, unitTownA, unitTownB, unitCounty, unitCity}
	risks := []string{syncproto.RiskHigh, syncproto.RiskMedium, syncproto.RiskLow}
	var rows []syncproto.FeedWarning
	for i := range 80 {
		warned := now.Add(-time.Duration(r.IntN(3*24*60)+1) * time.Minute)
		rows = append(rows, servertest.FeedRow(fmt.Sprintf("S%03d", i), units[r.IntN(len(units))], risks[r.IntN(3)], warned))
	}
	resp, err := c.dev["center1"].ImportFeed(ctx, rows)
	if err != nil || len(resp.Created) != len(rows) {
		t.Fatalf("import: %+v %v", resp, err)
	}
	var ids []string
	for _, cr := range resp.Created {
		ids = append(ids, cr.ID)
	}

	// Ops aimed where they can apply: the current assignee records, the
	// township's lead assigns, dispatches and reviews; now and then an op
	// that will be rejected, which must not count.
	cadres := map[string][]string{unitTownA: {"a1", "a2x", "a2y"}, unitTownB: {"b1"}}
	villages := map[string][]string{unitTownA: {unitVillA1, unitVillA2}, unitTownB: {unitVillB1}}
	leadOf := map[string]string{unitTownA: "leadA", unitTownB: "leadB"}
	username := map[string]string{}
	for name, id := range c.userIDs {
		username[id] = name
	}
	outcomes := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget, syncproto.OutcomeUnreachable, syncproto.OutcomeRefused}
	state := map[string]*syncproto.Warning{}
	applied := 0
	for round := range 400 {
		if round%25 == 0 {
			got, _ := pullAll(t, c.dev["center1"], "", syncproto.MaxPullLimit)
			for _, ch := range got {
				if w, ok := ch.Data.(*syncproto.Warning); ok {
					state[w.ID] = w
				}
			}
		}
		w := state[ids[r.IntN(len(ids))]]
		town := unitTownA
		if strings.HasPrefix(w.Unit, unitTownB) || (len(w.Unit) < len(unitTownA) && r.IntN(2) == 0) {
			town = unitTownB
		}
		d := c.dev[leadOf[town]]
		var body syncproto.OpBody
		typ := ""
		switch k := r.IntN(10); {
		case k < 2:
			typ = syncproto.OpAssigned
			body.Assignee = c.userIDs[cadres[town][r.IntN(len(cadres[town]))]]
		case k < 3:
			typ = syncproto.OpDispatched
			body.Unit = villages[town][r.IntN(len(villages[town]))]
		case k < 8:
			typ = syncproto.OpRecorded
			if name := username[w.Assignee]; name != "" && r.IntN(6) > 0 {
				d = c.dev[name]
			} else {
				d = c.dev[cadres[town][r.IntN(len(cadres[town]))]]
			}
			outcome := outcomes[r.IntN(len(outcomes))]
			body = recordBody(outcome, outcome != syncproto.OutcomeUnreachable)
			if outcome == syncproto.OutcomeAlreadyDefrauded {
				body.LossFen = int64(r.IntN(1000000) + 1)
			}
		default:
			typ = syncproto.OpReviewed
			body.Decision = []string{syncproto.DecisionApprove, syncproto.DecisionApprove, syncproto.DecisionReturn}[r.IntN(3)]
			body.Comment = "复核"
		}
		o := op(d, typ, w.ID, 0, body)
		o.At = now
		if res := push(t, d, o).Results[0]; res.Status == syncproto.StatusApplied {
			applied++
		}
	}
	if applied < 120 {
		t.Fatalf("only %d of 400 random ops applied; the test exercises too little", applied)
	}

	got, _ := pullAll(t, c.dev["center1"], "", syncproto.MaxPullLimit)
	var all []*syncproto.Warning
	for _, ch := range got {
		if w, ok := ch.Data.(*syncproto.Warning); ok {
			all = append(all, w)
		}
	}
	if len(all) != len(rows) {
		t.Fatalf("center holds %d warnings, want %d", len(all), len(rows))
	}
	from, to := beijingDay(now.AddDate(0, 0, -3)), beijingDay(now)
	in := func(unit, day string) []*syncproto.Warning {
		var out []*syncproto.Warning
		for _, w := range all {
			d := beijingDay(w.WarnedAt)
			if syncproto.InScope(unit, w.Unit) && d >= from && d <= to && (day == "" || d == day) {
				out = append(out, w)
			}
		}
		return out
	}
	check := func(t *testing.T, what string, got syncproto.Figures, want syncproto.Figures) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	for _, q := range []struct {
		dev, unit string
		children  []string
	}{
		{"center1", unitCity, []string{unitCounty}},
		{"county1", unitCounty, []string{unitTownA, unitTownB}},
		{"leadA", unitTownA, []string{unitVillA1, unitVillA2}},
		{"center1", unitVillB1, nil},
	} {
		t.Run(q.unit, func(t *testing.T) {
			var s syncproto.StatsResponse
			path := fmt.Sprintf("/v1/stats?unit=%s&from=%s&to=%s", q.unit, from, to)
			if err := c.dev[q.dev].Do(ctx, http.MethodGet, path, nil, &s); err != nil {
				t.Fatal(err)
			}
			check(t, "total", s.Total, expectFigures(in(q.unit, ""), now))
			// By fraud type: the scalar counts of each type's warnings.
			byType := map[string][]*syncproto.Warning{}
			for _, w := range in(q.unit, "") {
				byType[w.FraudType] = append(byType[w.FraudType], w)
			}
			if len(s.Types) != len(byType) {
				t.Errorf("types %+v, want %d", s.Types, len(byType))
			}
			for _, tf := range s.Types {
				want := expectFigures(byType[tf.FraudType], now)
				want.Overdue = 0
				want.FirstContact, want.Resolution, want.Closing = syncproto.Quantiles{}, syncproto.Quantiles{}, syncproto.Quantiles{}
				check(t, "type "+tf.FraudType, tf.Figures, want)
			}
			if q.unit == unitCity {
				f := s.Total
				if f.Closed == 0 || f.AlreadyDefrauded == 0 || f.LossFen == 0 || f.Overdue == 0 || f.Unreachable == 0 ||
					f.FirstContact.N == 0 || f.Resolution.N == 0 || f.Dispatched == f.Received {
					t.Fatalf("the random day left a figure untested: %+v", f)
				}
			}
			if len(s.Children) != len(q.children) {
				t.Fatalf("children %+v, want %v", s.Children, q.children)
			}
			for i, ch := range s.Children {
				if ch.Unit != q.children[i] || ch.Name == "" {
					t.Fatalf("child %d = %s %q", i, ch.Unit, ch.Name)
				}
				check(t, "child "+ch.Unit, ch.Figures, expectFigures(in(ch.Unit, ""), now))
			}
			var days []string
			for _, d := range s.Daily {
				days = append(days, d.Day)
				check(t, "day "+d.Day, d.Figures, expectFigures(in(q.unit, d.Day), now))
			}
			for day := now.AddDate(0, 0, -3); !day.After(now); day = day.AddDate(0, 0, 1) {
				if d := beijingDay(day); len(in(q.unit, d)) > 0 && !slices.Contains(days, d) {
					t.Errorf("no daily figures for %s", d)
				}
			}
		})
	}
	t.Run("Scope", func(t *testing.T) {
		var s syncproto.StatsResponse
		if err := c.dev["leadA"].Do(ctx, http.MethodGet, "/v1/stats?unit="+unitTownB, nil, &s); errCode(err) != syncproto.CodeForbidden {
			t.Fatalf("leadA on township B: %v", err)
		}
		if err := c.dev["a1"].Do(ctx, http.MethodGet, "/v1/stats", nil, &s); errCode(err) != syncproto.CodeForbidden {
			t.Fatalf("cadre: %v", err)
		}
		if err := c.dev["leadA"].Do(ctx, http.MethodGet, "/v1/stats", nil, &s); err != nil || s.Unit != unitTownA {
			t.Fatalf("default unit: %s %v", s.Unit, err)
		}
	})
	t.Run("BadParameters", func(t *testing.T) {
		for _, q := range []string{
			"unit=411002009", "unit=abc", "from=2026-13-01", "from=yesterday", "to=2026-02-30",
			"from=" + to + "&to=" + from, "from=2020-01-01&to=2026-01-01",
		} {
			var s syncproto.StatsResponse
			err := c.dev["center1"].Do(ctx, http.MethodGet, "/v1/stats?"+q, nil, &s)
			if errCode(err) != syncproto.CodeInvalidRequest || !strings.Contains(err.Error(), "400") {
				t.Errorf("%s: %v, want 400 invalid_request", q, err)
			}
		}
	})
}
