package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

// tally is the loop's figures for one unit as the simulation counts them,
// over the warnings of the feed's day.
type tally struct {
	received, dispatched, assigned, reached               int64
	dissuaded, defrauded, lossFen, notTarget, unreachable int64
	refused, resolved, closed                             int64
	firstContact, resolution                              []int64 // minutes
	openDeadlines                                         []time.Time
}

// overdueAt counts open warnings past their deadline at now, to the
// second, as the server's index does.
func (t *tally) overdueAt(now time.Time) int64 {
	var n int64
	for _, d := range t.openDeadlines {
		if d.Unix() < now.Unix() {
			n++
		}
	}
	return n
}

func (t *tally) outcome(o string) {
	switch o {
	case syncproto.OutcomeDissuaded:
		t.dissuaded++
	case syncproto.OutcomeAlreadyDefrauded:
		t.defrauded++
	case syncproto.OutcomeNotTarget:
		t.notTarget++
	case syncproto.OutcomeUnreachable:
		t.unreachable++
	case syncproto.OutcomeRefused:
		t.refused++
	}
}

// minutes is whole minutes from a warning to a later moment, never
// negative.
func minutes(from, to time.Time) int64 { return max(int64(to.Sub(from)/time.Minute), 0) }

// addTimes counts the minutes to first contact and to resolution of w.
func (t *tally) addTimes(w *syncproto.Warning) {
	if w == nil {
		return
	}
	if w.FirstContactAt != nil {
		t.firstContact = append(t.firstContact, minutes(w.WarnedAt, *w.FirstContactAt))
	}
	if w.ResolvedAt != nil {
		t.resolution = append(t.resolution, minutes(w.WarnedAt, *w.ResolvedAt))
	}
}

// addState counts one warning from its synced state.
func (t *tally) addState(w *syncproto.Warning) {
	t.received++
	if w.DispatchedAt != nil {
		t.dispatched++
	}
	if w.AssignedAt != nil {
		t.assigned++
	}
	var loss int64
	reached := false
	for _, a := range w.Attempts {
		reached = reached || a.Reached
		if a.Outcome == syncproto.OutcomeAlreadyDefrauded {
			loss = a.LossFen
		}
	}
	if reached {
		t.reached++
	}
	t.outcome(w.Outcome)
	if w.Outcome == syncproto.OutcomeAlreadyDefrauded {
		t.lossFen += loss
	}
	switch w.Status {
	case syncproto.WarningClosed:
		t.closed++
		t.resolved++
	case syncproto.WarningResolved:
		t.resolved++
	default:
		t.openDeadlines = append(t.openDeadlines, w.Deadline)
	}
	t.addTimes(w)
}

// addLedger counts one warning from the ledger's view of it.
func (t *tally) addLedger(st ledgerState) {
	t.received++
	if st.dispatched {
		t.dispatched++
	}
	if st.assigned {
		t.assigned++
	}
	if st.reached {
		t.reached++
	}
	t.outcome(st.outcome)
	t.lossFen += st.lossFen
	if st.closed {
		t.closed++
	}
	if st.resolved {
		t.resolved++
	}
}

// quantiles are nearest-rank: the p-quantile is the ceil(p*n)-th smallest.
func quantiles(xs []int64) syncproto.Quantiles {
	n := int64(len(xs))
	if n == 0 {
		return syncproto.Quantiles{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(pct int64) int64 { return s[max((pct*n+99)/100, 1)-1] }
	return syncproto.Quantiles{N: n, Median: rank(50), P90: rank(90)}
}

// tallies are one tally per unit: the city and each county.
type tallies map[string]*tally

func (ts tallies) at(unit string) *tally {
	if ts[unit] == nil {
		ts[unit] = &tally{}
	}
	return ts[unit]
}

// units a warning counts in: the city and its county.
func countUnits(unit string) []string { return []string{cityCode, unit[:6]} }

// report fetches the statistics, prints them, and checks them against the
// simulation's own count and the center's synced view.
func (s *sim) report(ctx context.Context, out io.Writer) error {
	// The center's view after its final full sync.
	centerView := map[string]*syncproto.Warning{}
	for _, w := range s.centerSDK.sdk.Warnings(clientsdk.Filter{}) {
		centerView[w.ID] = &w.Warning
	}
	// Each phone's final synced state, the truth for times of contact and
	// resolution.
	phoneView := map[string]*syncproto.Warning{}
	phoneOf := map[string][]string{}
	for _, a := range s.phones {
		for _, w := range a.sdk.Warnings(clientsdk.Filter{}) {
			phoneView[w.ID] = &w.Warning
			phoneOf[w.ID] = append(phoneOf[w.ID], a.username)
		}
	}

	fromCenter, fromSim := tallies{}, tallies{}
	for _, w := range centerView {
		if w.WarnedAt.In(syncproto.Beijing).Format(time.DateOnly) != s.day {
			continue
		}
		for _, u := range countUnits(w.Unit) {
			fromCenter.at(u).addState(w)
		}
	}
	for _, id := range s.ledger.order {
		e := s.ledger.warnings[id]
		st := e.state()
		for _, u := range countUnits(e.feedUnit) {
			t := fromSim.at(u)
			t.addLedger(st)
			if len(e.attempts) > 0 {
				t.addTimes(phoneView[id])
			}
		}
	}

	before := time.Now()
	var stats syncproto.StatsResponse
	q := url.Values{"unit": {cityCode}, "from": {s.day}, "to": {s.day}}
	if err := s.center.Do(ctx, http.MethodGet, "/v1/stats?"+q.Encode(), nil, &stats); err != nil {
		return fmt.Errorf("GET /v1/stats: %w", err)
	}
	after := time.Now()

	s.printDay(out)
	units := []syncproto.UnitFigures{{Unit: stats.Unit, Name: stats.Name, Figures: stats.Total}}
	units = append(units, stats.Children...)
	fmt.Fprintf(out, "\nGET /v1/stats?%s as %s (%d warnings received %s, Beijing time)\n\n", q.Encode(), demo.CenterUsername, stats.Total.Received, s.day)
	printFigures(out, units)
	s.printFootnote(out)

	c := &checker{out: out}
	fmt.Fprintf(out, "\nchecks: the server's figures against the simulation's own count (the ledger of applied ops,\n")
	fmt.Fprintf(out, "with the phones' final states for times) and the center's view after a final full sync\n\n")
	c.figures(units[0], fromSim.at(cityCode), fromCenter.at(cityCode), before, after, true)
	if len(stats.Children) != len(s.tree.Counties()) {
		c.result(fmt.Sprintf("children of %s are its %d counties", cityCode, len(s.tree.Counties())), len(stats.Children) == len(s.tree.Counties()), fmt.Sprint(len(stats.Children)))
	}
	fmt.Fprintln(out)
	for _, u := range stats.Children {
		c.figures(u, fromSim.at(u.Unit), fromCenter.at(u.Unit), before, after, false)
	}

	fmt.Fprintln(out)
	c.result("the center holds every warning of the feed", len(centerView) == len(s.ledger.order), fmt.Sprintf("%d of %d", len(centerView), len(s.ledger.order)))
	s.checkLedger(c, centerView, phoneOf)
	s.checkDevices(c, centerView)

	fmt.Fprintf(out, "\n%d checks, %d failed\n", c.n, c.failed)
	if c.failed > 0 {
		return fmt.Errorf("%d of %d checks failed", c.failed, c.n)
	}
	return nil
}

// printDay prints what the simulation did.
func (s *sim) printDay(out io.Writer) {
	var syncs, failures, periods int
	var refused, lost int64
	for _, a := range s.phones {
		syncs += a.syncs
		failures += a.syncFailures
		periods += a.offlinePeriods
		refused += a.radio.refused.Load()
		lost += a.radio.lost.Load()
	}
	fmt.Fprintf(out, "%s, %s (Beijing): %d warnings in the morning feed; %d phones, %d leads; %d rounds in %v\n",
		demo.CityName, s.day, len(s.ledger.order), len(s.phones), len(s.leads), s.rounds, s.timing.day.Round(time.Millisecond))
	fmt.Fprintf(out, "phones: %d syncs, %d failed without signal (%d requests refused), %d periods offline, %d answers lost mid-request\n",
		syncs, failures, refused, periods, lost)
	fmt.Fprintf(out, "ops the devices made (applied / made, rejected):\n")
	l := s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{syncproto.OpDispatched, syncproto.OpAssigned, syncproto.OpRecorded, kindApprove, kindReturn} {
		c := l.ops[k]
		if c == nil {
			c = &opCount{}
		}
		line := fmt.Sprintf("  %-28s %6d / %-6d %d rejected", k, c.applied, c.made, c.rejected)
		if len(c.codes) > 0 {
			line += fmt.Sprintf(" %v", c.codes)
		}
		fmt.Fprintln(out, line)
	}
	outcomes := map[string]int{}
	for _, e := range l.warnings {
		for _, a := range e.attempts {
			outcomes[a.outcome]++
		}
	}
	fmt.Fprintf(out, "  attempts by outcome: dissuaded %d, unreachable %d, refused %d, not_target %d, already_defrauded %d\n",
		outcomes[syncproto.OutcomeDissuaded], outcomes[syncproto.OutcomeUnreachable], outcomes[syncproto.OutcomeRefused],
		outcomes[syncproto.OutcomeNotTarget], outcomes[syncproto.OutcomeAlreadyDefrauded])
}

// printFootnote says who dispatched and assigned, since the feed's import
// by the center already counts as a dispatch.
func (s *sim) printFootnote(out io.Writer) {
	var byCounty, byTownship, byFeed, byDispatch, byLead int
	for _, e := range s.ledger.warnings {
		switch {
		case strings.HasPrefix(e.dispatchedBy, demo.CountyUsername("")):
			byCounty++
		case e.dispatchedBy != "":
			byTownship++
		}
		switch {
		case e.assignedTo != "":
			byLead++
		case e.assigned && e.dispatchedBy != "":
			byDispatch++
		case e.assigned:
			byFeed++
		}
	}
	fmt.Fprintf(out, "\ndispatched counts every warning the center sent below itself, by the feed's address on import;\n")
	fmt.Fprintf(out, "of those addressed to a county or township, %d were dispatched on to a village by county leads and %d by township leads.\n", byCounty, byTownship)
	fmt.Fprintf(out, "assigned: %d by the feed and %d on dispatch (villages with one cadre), %d by township leads (villages with two).\n", byFeed, byDispatch, byLead)
}

// printFigures prints the figures with a column per unit.
func printFigures(out io.Writer, units []syncproto.UnitFigures) {
	q := func(v syncproto.Quantiles, p90 bool) string {
		if v.N == 0 {
			return "-"
		}
		if p90 {
			return fmt.Sprint(v.P90)
		}
		return fmt.Sprint(v.Median)
	}
	rows := []struct {
		label string
		get   func(f *syncproto.Figures) string
	}{
		{"received", func(f *syncproto.Figures) string { return fmt.Sprint(f.Received) }},
		{"dispatched", func(f *syncproto.Figures) string { return fmt.Sprint(f.Dispatched) }},
		{"assigned", func(f *syncproto.Figures) string { return fmt.Sprint(f.Assigned) }},
		{"reached", func(f *syncproto.Figures) string { return fmt.Sprint(f.Reached) }},
		{"dissuaded", func(f *syncproto.Figures) string { return fmt.Sprint(f.Dissuaded) }},
		{"already_defrauded", func(f *syncproto.Figures) string { return fmt.Sprint(f.AlreadyDefrauded) }},
		{"  loss (yuan)", func(f *syncproto.Figures) string { return yuan(f.LossFen) }},
		{"not_target", func(f *syncproto.Figures) string { return fmt.Sprint(f.NotTarget) }},
		{"unreachable", func(f *syncproto.Figures) string { return fmt.Sprint(f.Unreachable) }},
		{"refused", func(f *syncproto.Figures) string { return fmt.Sprint(f.Refused) }},
		{"overdue", func(f *syncproto.Figures) string { return fmt.Sprint(f.Overdue) }},
		{"resolved", func(f *syncproto.Figures) string { return fmt.Sprint(f.Resolved) }},
		{"closed", func(f *syncproto.Figures) string { return fmt.Sprint(f.Closed) }},
		{"closure rate", func(f *syncproto.Figures) string { return fmt.Sprintf("%.1f%%", 100*f.ClosureRate) }},
		{"first contact median (min)", func(f *syncproto.Figures) string { return q(f.FirstContact, false) }},
		{"first contact p90 (min)", func(f *syncproto.Figures) string { return q(f.FirstContact, true) }},
		{"resolution median (min)", func(f *syncproto.Figures) string { return q(f.Resolution, false) }},
		{"resolution p90 (min)", func(f *syncproto.Figures) string { return q(f.Resolution, true) }},
	}
	t := &table{}
	head := []string{""}
	for _, u := range units {
		head = append(head, u.Name)
	}
	t.add(head...)
	for _, r := range rows {
		cells := []string{r.label}
		for i := range units {
			cells = append(cells, r.get(&units[i].Figures))
		}
		t.add(cells...)
	}
	t.print(out)
}

// yuan formats fen as yuan.
func yuan(fen int64) string {
	if fen%100 == 0 {
		return groupDigits(fen / 100)
	}
	return fmt.Sprintf("%s.%02d", groupDigits(fen/100), fen%100)
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checker prints PASS or FAIL lines and counts them.
type checker struct {
	out       io.Writer
	n, failed int
}

func (c *checker) result(what string, ok bool, detail string) {
	c.n++
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
		c.failed++
	}
	fmt.Fprintf(c.out, "%s  %s: %s\n", verdict, what, detail)
}

// figures compares one unit's server figures with the simulation's count
// and the center's view: printed line by line for the city, in one line
// per county unless something differs.
func (c *checker) figures(u syncproto.UnitFigures, sim, center *tally, before, after time.Time, verbose bool) {
	f := &u.Figures
	simFC, simRes := quantiles(sim.firstContact), quantiles(sim.resolution)
	cFC, cRes := quantiles(center.firstContact), quantiles(center.resolution)
	type row struct {
		name             string
		server, sim, ctr int64
	}
	rows := []row{
		{name: "received", server: f.Received, sim: sim.received, ctr: center.received},
		{name: "dispatched", server: f.Dispatched, sim: sim.dispatched, ctr: center.dispatched},
		{name: "assigned", server: f.Assigned, sim: sim.assigned, ctr: center.assigned},
		{name: "reached", server: f.Reached, sim: sim.reached, ctr: center.reached},
		{name: "dissuaded", server: f.Dissuaded, sim: sim.dissuaded, ctr: center.dissuaded},
		{name: "already_defrauded", server: f.AlreadyDefrauded, sim: sim.defrauded, ctr: center.defrauded},
		{name: "loss_fen", server: f.LossFen, sim: sim.lossFen, ctr: center.lossFen},
		{name: "not_target", server: f.NotTarget, sim: sim.notTarget, ctr: center.notTarget},
		{name: "unreachable", server: f.Unreachable, sim: sim.unreachable, ctr: center.unreachable},
		{name: "refused", server: f.Refused, sim: sim.refused, ctr: center.refused},
		{name: "resolved", server: f.Resolved, sim: sim.resolved, ctr: center.resolved},
		{name: "closed", server: f.Closed, sim: sim.closed, ctr: center.closed},
		{name: "first contact n", server: f.FirstContact.N, sim: simFC.N, ctr: cFC.N},
		{name: "first contact median", server: f.FirstContact.Median, sim: simFC.Median, ctr: cFC.Median},
		{name: "first contact p90", server: f.FirstContact.P90, sim: simFC.P90, ctr: cFC.P90},
		{name: "resolution n", server: f.Resolution.N, sim: simRes.N, ctr: cRes.N},
		{name: "resolution median", server: f.Resolution.Median, sim: simRes.Median, ctr: cRes.Median},
		{name: "resolution p90", server: f.Resolution.P90, sim: simRes.P90, ctr: cRes.P90},
	}
	lo, hi := center.overdueAt(before), center.overdueAt(after)
	overdueOK := lo <= f.Overdue && f.Overdue <= hi
	var failed []string
	t := &table{}
	if verbose {
		t.add("figure", "server", "sim", "center", "")
	}
	for _, r := range rows {
		ok := r.server == r.sim && r.server == r.ctr
		c.n++
		if !ok {
			c.failed++
			failed = append(failed, fmt.Sprintf("%s server %d sim %d center %d", r.name, r.server, r.sim, r.ctr))
		}
		if verbose {
			t.add(r.name, fmt.Sprint(r.server), fmt.Sprint(r.sim), fmt.Sprint(r.ctr), passFail(ok))
		}
	}
	c.n++
	if !overdueOK {
		c.failed++
		failed = append(failed, fmt.Sprintf("overdue server %d center %d..%d", f.Overdue, lo, hi))
	}
	if verbose {
		ctr := fmt.Sprint(lo)
		if hi != lo {
			ctr = fmt.Sprintf("%d..%d", lo, hi)
		}
		t.add("overdue (at read time)", fmt.Sprint(f.Overdue), "-", ctr, passFail(overdueOK))
		fmt.Fprintf(c.out, "%s %s\n", u.Name, u.Unit)
		t.print(c.out)
		return
	}
	if len(failed) == 0 {
		fmt.Fprintf(c.out, "PASS  %s %s: all %d figures equal (received %d, closed %d)\n", u.Name, u.Unit, len(rows)+1, f.Received, f.Closed)
		return
	}
	for _, f := range failed {
		fmt.Fprintf(c.out, "FAIL  %s %s: %s\n", u.Name, u.Unit, f)
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// checkLedger compares, warning by warning, what the ledger says with what
// the center holds.
func (s *sim) checkLedger(c *checker, view map[string]*syncproto.Warning, phoneOf map[string][]string) {
	var diffs []string
	diff := func(e *entry, format string, args ...any) {
		diffs = append(diffs, e.externalID+": "+fmt.Sprintf(format, args...))
	}
	for _, id := range s.ledger.order {
		e := s.ledger.warnings[id]
		w := view[id]
		if w == nil {
			diff(e, "not on the center's device")
			continue
		}
		st := e.state()
		got := ledgerState{
			dispatched: w.DispatchedAt != nil, assigned: w.AssignedAt != nil, outcome: w.Outcome,
			resolved: w.Status == syncproto.WarningResolved || w.Status == syncproto.WarningClosed,
			closed:   w.Status == syncproto.WarningClosed,
		}
		for _, a := range w.Attempts {
			got.reached = got.reached || a.Reached
			if a.Outcome == syncproto.OutcomeAlreadyDefrauded && w.Outcome == syncproto.OutcomeAlreadyDefrauded {
				got.lossFen = a.LossFen
			}
		}
		if got != st {
			diff(e, "ledger %+v, center %+v", st, got)
		}
		if atts := e.sortedAttempts(); len(w.Attempts) != len(atts) {
			diff(e, "ledger has %d applied attempts, the warning %d", len(atts), len(w.Attempts))
		} else {
			for i, a := range w.Attempts {
				if a.Outcome != atts[i].outcome || s.usernames[a.By] != atts[i].device {
					diff(e, "attempt %d: ledger %s by %s, warning %s by %s", i+1, atts[i].outcome, atts[i].device, a.Outcome, s.usernames[a.By])
					break
				}
			}
		}
		var approves, returns int
		for _, r := range w.Reviews {
			if r.Decision == syncproto.DecisionApprove {
				approves++
			} else {
				returns++
			}
		}
		if approves != e.approves || returns != e.returns {
			diff(e, "ledger %d approvals and %d returns, the warning %d and %d", e.approves, e.returns, approves, returns)
		}
		if w.Unit != e.unit {
			diff(e, "ledger at unit %s, the warning at %s", e.unit, w.Unit)
		}
		if e.assignedTo != "" && w.Assignee != e.assignedTo {
			diff(e, "ledger assigned to %s, the warning to %s", s.usernames[e.assignedTo], s.usernames[w.Assignee])
		}
		if len(e.attempts) > 0 {
			if devs := e.devices(); len(devs) != 1 || !slices.Equal(phoneOf[id], devs) {
				diff(e, "attempts from %v, held by phones %v", devs, phoneOf[id])
			}
		}
	}
	detail := fmt.Sprintf("%d warnings, %d differences", len(s.ledger.order), len(diffs))
	if len(diffs) > 0 {
		detail += ", first: " + diffs[0]
	}
	c.result("the ledger of applied ops matches each warning the center holds", len(diffs) == 0, detail)
}

// checkDevices checks that every phone and lead ended holding exactly its
// scope at the server's versions.
func (s *sim) checkDevices(c *checker, view map[string]*syncproto.Warning) {
	var bad []string
	check := func(a *actor, inScope func(w *syncproto.Warning) bool) {
		held := map[string]bool{}
		for _, w := range a.sdk.Warnings(clientsdk.Filter{}) {
			held[w.ID] = true
			cw := view[w.ID]
			switch {
			case cw == nil:
				bad = append(bad, fmt.Sprintf("%s holds %s, which the center does not", a.username, w.ExternalID))
			case cw.Version != w.Version || cw.Status != w.Status:
				bad = append(bad, fmt.Sprintf("%s holds %s at version %d (%s), the center at %d (%s)", a.username, w.ExternalID, w.Version, w.Status, cw.Version, cw.Status))
			case !inScope(cw):
				bad = append(bad, fmt.Sprintf("%s holds %s, outside its scope", a.username, w.ExternalID))
			}
			if len(w.Ops) > 0 {
				bad = append(bad, fmt.Sprintf("%s still has %d ops on %s", a.username, len(w.Ops), w.ExternalID))
			}
		}
		for id, w := range view {
			if inScope(w) && !held[id] {
				bad = append(bad, fmt.Sprintf("%s lacks %s", a.username, w.ExternalID))
			}
		}
	}
	for _, a := range s.phones {
		check(a, func(w *syncproto.Warning) bool { return w.Assignee == a.userID })
	}
	for _, a := range s.leads {
		check(a, func(w *syncproto.Warning) bool { return syncproto.InScope(a.unit, w.Unit) })
	}
	detail := fmt.Sprintf("%d phones, %d leads, %d differences", len(s.phones), len(s.leads), len(bad))
	if len(bad) > 0 {
		detail += ", first: " + bad[0]
	}
	c.result("every phone and lead holds exactly its scope at the center's versions", len(bad) == 0, detail)
}

// table prints columns aligned by display width: a Chinese character takes
// two columns. The first column is left-aligned, the others right.
type table struct{ rows [][]string }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(out io.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], width(c))
		}
	}
	for _, r := range t.rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-width(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), " "))
	}
}

// width is the display width of s in a terminal.
func width(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115f || r >= 0x2e80) {
			n += 2
		} else {
			n++
		}
	}
	return n
}
