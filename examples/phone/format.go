package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/syncproto"
)

// shortWarningIDs is the shortest unique prefix of every warning on the
// phone, so a prefix shown works for show, record and the rest.
func (p *phone) shortWarningIDs() map[string]string {
	var ids []string
	for _, w := range p.sdk.Warnings(clientsdk.Filter{}) {
		ids = append(ids, w.ID)
	}
	return shortIDs(ids)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// clock shows t in Beijing time, the time of the console and of the
// people the phone works with, whatever the machine's zone.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(syncproto.Beijing).Format("2006-01-02 15:04")
}

// opSummary counts a warning's unconfirmed and rejected ops by state.
func opSummary(ops []clientsdk.OpStatus, rejected int) string {
	counts := map[string]int{}
	for _, o := range ops {
		counts[o.State]++
	}
	counts["rejected"] += rejected
	var parts []string
	for _, s := range []string{"pending", "sent", "applied", "rejected"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(parts) == 0 {
		return "synced"
	}
	return strings.Join(parts, ", ")
}

func (p *phone) rejectedByWarning() map[string]int {
	m := map[string]int{}
	for _, o := range p.sdk.Rejected() {
		m[o.WarningID]++
	}
	return m
}

// printList is the list table. The name comes last: a terminal shows
// Chinese characters two columns wide, which tabwriter does not know.
func printList(p *phone, ws []clientsdk.Warning) {
	short, rejected := p.shortWarningIDs(), p.rejectedByWarning()
	tw := table(p.stdout)
	fmt.Fprintln(tw, "ID\tSTATUS\tRISK\tDEADLINE\tSYNC\tNAME")
	for i := range ws {
		w := &ws[i]
		deadline := clock(w.Deadline)
		if w.Overdue {
			deadline += " OVERDUE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", short[w.ID], w.Status, w.Risk, deadline, opSummary(w.Ops, rejected[w.ID]), w.Name)
	}
	tw.Flush()
	fmt.Fprintf(p.stdout, "%d warnings\n", len(ws))
}

// whoNamed is who, with the name the server wrote beside the id when the
// phone's directory does not hold that user (a lead, on a cadre's phone).
func (p *phone) whoNamed(id, name string) string {
	if w := p.who(id); w != id || name == "" {
		return w
	}
	return name
}

// who names a user id as well as the phone can.
func (p *phone) who(id string) string {
	if id == "" {
		return "-"
	}
	if me, _ := p.sdk.User(); me.ID == id {
		return fmt.Sprintf("%s (%s, you)", me.Name, me.Username)
	}
	for _, u := range p.sdk.Cadres() {
		if u.ID == id {
			return fmt.Sprintf("%s (%s)", u.Name, u.Username)
		}
	}
	return id
}

func (p *phone) unitName(code string) string {
	for _, u := range p.sdk.Units() {
		if u.Code == code {
			return code + " " + u.Name
		}
	}
	return code
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func optTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return clock(*t)
}

// printEscalations lists the requests for help and the answers to them.
func printEscalations(p *phone, w *clientsdk.Warning) {
	if len(w.Escalations) == 0 {
		return
	}
	fmt.Fprintf(p.stdout, "escalations (%d)\n", len(w.Escalations))
	for _, e := range w.Escalations {
		fmt.Fprintf(p.stdout, "  %s  asked by %s: %s\n", clock(e.At), p.whoNamed(e.By, e.ByName), e.Reason)
		if e.Answered() {
			fmt.Fprintf(p.stdout, "      answer by %s at %s: %s\n", p.whoNamed(e.AnsweredBy, e.AnsweredByName), clock(*e.AnsweredAt), e.Answer)
		} else {
			fmt.Fprintln(p.stdout, "      not answered yet")
		}
	}
}

// printWarning shows everything the phone knows of a warning.
func printWarning(p *phone, w *clientsdk.Warning) {
	out := p.stdout
	status := w.Status
	if w.Overdue {
		status += " (OVERDUE)"
	}
	fmt.Fprintf(out, "warning %s\n", w.ID)
	tw := table(out)
	for _, f := range [][2]string{
		{"external id", w.ExternalID}, {"name", w.Name}, {"phone", w.Phone}, {"id card tail", w.IDTail},
		{"address", w.Address}, {"unit", p.unitName(w.Unit)}, {"fraud type", w.FraudType}, {"risk", w.Risk},
		{"status", status}, {"assignee", p.who(w.Assignee)}, {"outcome", orDash(w.Outcome)},
		{"escalated", yesNo(w.Escalated)}, {"warned at", clock(w.WarnedAt)}, {"received at", clock(w.ReceivedAt)},
		{"deadline", clock(w.Deadline)}, {"dispatched at", optTime(w.DispatchedAt)}, {"assigned at", optTime(w.AssignedAt)},
		{"first contact", optTime(w.FirstContactAt)}, {"resolved at", optTime(w.ResolvedAt)}, {"closed at", optTime(w.ClosedAt)},
		{"version", fmt.Sprint(w.Version)},
	} {
		fmt.Fprintf(tw, "  %s\t%s\n", f[0], f[1])
	}
	tw.Flush()

	attempts := append([]syncproto.Attempt(nil), w.Attempts...)
	sort.SliceStable(attempts, func(i, j int) bool { return attempts[i].At.Before(attempts[j].At) })
	fmt.Fprintf(out, "attempts (%d)\n", len(attempts))
	for _, a := range attempts {
		reached := "not reached"
		if a.Reached {
			reached = "reached"
		}
		fmt.Fprintf(out, "  %s  %s, %s, %s  by %s\n", clock(a.At), a.Method, reached, a.Outcome, p.who(a.By))
		if a.Notes != "" {
			fmt.Fprintf(out, "      notes: %s\n", a.Notes)
		}
		if a.LossFen > 0 {
			fmt.Fprintf(out, "      loss: %d.%02d yuan\n", a.LossFen/100, a.LossFen%100)
		}
		if a.Location != nil {
			fmt.Fprintf(out, "      location: %.5f, %.5f\n", a.Location.Lat, a.Location.Lng)
		}
		if len(a.Photos) > 0 {
			missing := 0
			for _, ph := range a.Photos {
				for _, m := range w.MissingPhotos {
					if m == ph {
						missing++
					}
				}
			}
			fmt.Fprintf(out, "      photos: %d (%d not on the server yet)\n", len(a.Photos), missing)
		}
	}
	if r, ok := w.LastReturn(); ok && w.Status != syncproto.WarningClosed {
		// What the cadre must redo comes before the history of it.
		fmt.Fprintf(out, "returned by %s at %s: %s\n", p.whoNamed(r.By, r.ByName), clock(r.At), r.Comment)
	}
	printEscalations(p, w)
	fmt.Fprintf(out, "reviews (%d)\n", len(w.Reviews))
	for _, r := range w.Reviews {
		fmt.Fprintf(out, "  %s  %s by %s", clock(r.At), r.Decision, p.whoNamed(r.By, r.ByName))
		if r.Comment != "" {
			fmt.Fprintf(out, ": %s", r.Comment)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "flags (%d, %d open)\n", len(w.Flags), w.OpenFlags())
	for _, f := range w.Flags {
		state := "open"
		if f.Resolved {
			state = "resolved"
		}
		fmt.Fprintf(out, "  %s (%s) op %s: %s\n", f.Code, state, f.OpID, f.Detail)
	}
	var rejected []clientsdk.OpStatus
	for _, o := range p.sdk.Rejected() {
		if o.WarningID == w.ID {
			rejected = append(rejected, o)
		}
	}
	fmt.Fprintf(out, "ops on this phone (%d): %s\n", len(w.Ops)+len(rejected), opSummary(w.Ops, len(rejected)))
	for _, o := range append(append([]clientsdk.OpStatus(nil), w.Ops...), rejected...) {
		fmt.Fprintf(out, "  %s  #%d %s  %s  %s", o.OpID, o.ClientSeq, o.Type, o.State, clock(o.At))
		if o.Code != "" {
			fmt.Fprintf(out, "  %s: %s", o.Code, o.Message)
		}
		fmt.Fprintln(out)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printRejected(p *phone, ops []clientsdk.OpStatus) {
	if len(ops) == 0 {
		fmt.Fprintln(p.stdout, "no rejected ops")
		return
	}
	var ids []string
	for _, o := range ops {
		ids = append(ids, o.OpID)
	}
	short, wshort := shortIDs(ids), p.shortWarningIDs()
	tw := table(p.stdout)
	fmt.Fprintln(tw, "OP\tWARNING\tTYPE\tAT\tWHY")
	for _, o := range ops {
		wid := wshort[o.WarningID]
		if wid == "" {
			wid = o.WarningID // no longer on the phone
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s: %s\n", short[o.OpID], wid, o.Type, clock(o.At), o.Code, o.Message)
	}
	tw.Flush()
	fmt.Fprintln(p.stdout, "`dismiss OP` once read")
}

func printDirectory(p *phone) {
	units, cadres := p.sdk.Units(), p.sdk.Cadres()
	if len(units) == 0 && len(cadres) == 0 {
		fmt.Fprintln(p.stdout, "no directory on this phone (village cadres have none; leads get it at sync)")
		return
	}
	tw := table(p.stdout)
	fmt.Fprintln(tw, "UNIT\tLEVEL\tNAME")
	for _, u := range units {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Code, u.Level, u.Name)
	}
	tw.Flush()
	fmt.Fprintln(p.stdout)
	tw = table(p.stdout)
	fmt.Fprintln(tw, "CADRE\tUNIT\tNAME")
	for _, u := range cadres {
		name := u.Name
		if !u.Active {
			name += " (inactive)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Username, u.Unit, name)
	}
	tw.Flush()
}

func printStatus(p *phone) {
	st := p.sdk.Status()
	u, _ := p.sdk.User()
	session := "logged out"
	switch {
	case st.Revoked && st.Wiped:
		session = fmt.Sprintf("revoked and wiped (%d unsent ops to hand over)", len(p.sdk.HandOver()))
	case st.Revoked:
		session = "revoked: this phone may not sync again"
	case st.LoggedIn:
		session = "logged in"
	}
	offline := "off"
	if p.settings.Offline {
		offline = "on (sync refused)"
	}
	user := "-"
	if u.Username != "" {
		user = fmt.Sprintf("%s (%s), %s of unit %s", u.Name, u.Username, u.Role, u.Unit)
	}
	ws := p.sdk.Warnings(clientsdk.Filter{})
	overdue := 0
	for _, w := range ws {
		if w.Overdue {
			overdue++
		}
	}
	lastSync, lastErr := "never", "-"
	if !st.LastSync.IsZero() {
		lastSync = clock(st.LastSync)
	}
	if st.LastError != nil {
		lastErr = st.LastError.Error()
	}
	server := p.settings.Server
	if strings.Contains(server, ",") {
		// A cluster's nodes: say which one answered last.
		server += " (in use: " + p.sdk.Server() + ")"
	}
	tw := table(p.stdout)
	for _, f := range [][2]string{
		{"server", server}, {"offline", offline}, {"user", user}, {"session", session},
		{"device", orDash(p.sdk.DeviceID())}, {"warnings", fmt.Sprintf("%d on the phone, %d overdue", len(ws), overdue)},
		{"pending", fmt.Sprintf("%d ops not yet confirmed", st.Pending)}, {"rejected", fmt.Sprintf("%d (see `rejected`)", st.Rejected)},
		{"last sync", lastSync}, {"last error", lastErr},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], f[1])
	}
	tw.Flush()
}

// progressBar draws a sync's progress, one line per phase (push, photos,
// pull): on a terminal a bar redrawn in place, elsewhere (a file, a pipe,
// a test) a plain line as each phase ends, so the output reads as text.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	plain bool
	last  *clientsdk.Progress
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, plain: !isTerminal(w)}
}

// isTerminal reports whether w is a terminal, which can redraw a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const barWidth = 30

func (b *progressBar) update(pr clientsdk.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last != nil && b.last.Phase != pr.Phase {
		// The SDK moves on only when a phase is through.
		b.draw(*b.last, true)
		fmt.Fprintln(b.w)
	}
	if !b.plain {
		b.draw(pr, false)
	}
	b.last = &pr
}

func (b *progressBar) draw(pr clientsdk.Progress, complete bool) {
	done, total := pr.Pushed, pr.ToPush
	if pr.Phase == "pull" {
		done, total = pr.Pulled, pr.Pulled+pr.Remaining
	}
	if complete {
		done = total
	}
	if b.plain {
		fmt.Fprintf(b.w, "%s %d/%d", pr.Phase, done, total)
		return
	}
	filled := barWidth
	if total > 0 {
		filled = min(barWidth, done*barWidth/total)
	}
	fmt.Fprintf(b.w, "\r%-6s [%s%s] %d/%d", pr.Phase, strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), done, total)
}

// done ends the bar: the last phase is through when the sync succeeded.
func (b *progressBar) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last != nil {
		switch {
		case ok:
			b.draw(*b.last, true)
			fmt.Fprintln(b.w)
		case !b.plain:
			fmt.Fprintln(b.w)
		}
	}
}
