package console

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi/query"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// funcs are the templates' functions; each page's file adds its own.
var funcs = template.FuncMap{}

func init() {
	funcs["percent"] = func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }
	funcs["minutes"] = func(q syncproto.Quantiles) string { return dashMinutes(q.Median, q.N) }
	funcs["p90"] = func(q syncproto.Quantiles) string { return dashMinutes(q.P90, q.N) }
	funcs["count"] = dashCount
	funcs["rate"] = func(n, of int64) string {
		if of == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", float64(n)*100/float64(of))
	}
}

// dashMinutes shows a duration of whole minutes the way a desk reads it;
// a dash when no warning got there.
func dashMinutes(m, n int64) string {
	switch {
	case n == 0:
		return "—"
	case m < 120:
		return fmt.Sprintf("%d 分钟", m)
	case m < 48*60:
		return fmt.Sprintf("%.1f 小时", float64(m)/60)
	}
	return fmt.Sprintf("%.1f 天", float64(m)/60/24)
}

// dashCount writes a count with thousands separators: 1,000,000.
func dashCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// period is the dashboard's date range, as the URL gives it.
type period struct {
	// Key is today, 7d, 30d or custom.
	Key      string
	From, To time.Time
}

// Query is the period as URL parameters, for links that keep it.
func (p period) Query() string {
	if p.Key == "custom" {
		return "from=" + p.From.Format(time.DateOnly) + "&to=" + p.To.Format(time.DateOnly)
	}
	return "range=" + p.Key
}

// readPeriod reads range (today, 7d, 30d) or from and to (YYYY-MM-DD):
// the last 7 days by default. A bad value falls back to the default with
// a message.
func readPeriod(ctx echo.Context, now time.Time) (period, string) {
	today := syncproto.DayStart(now)
	days := map[string]int{"today": 1, "7d": 7, "30d": 30}
	from, to := ctx.QueryParam("from"), ctx.QueryParam("to")
	if from != "" || to != "" {
		f, errF := query.Day("from", from)
		t, errT := query.Day("to", to)
		switch {
		case errF != nil || errT != nil || from == "" || to == "":
			return period{Key: "7d", From: today.AddDate(0, 0, -6), To: today}, "日期格式应为 年-月-日，例如 2026-03-01；已显示近 7 天。"
		case f.After(t):
			return period{Key: "7d", From: today.AddDate(0, 0, -6), To: today}, "开始日期晚于结束日期；已显示近 7 天。"
		case t.Sub(f) > 365*24*time.Hour:
			return period{Key: "7d", From: today.AddDate(0, 0, -6), To: today}, "日期范围最长一年；已显示近 7 天。"
		}
		return period{Key: "custom", From: f, To: t}, ""
	}
	key := ctx.QueryParam("range")
	n, ok := days[key]
	if !ok {
		key, n = "7d", 7
	}
	return period{Key: key, From: today.AddDate(0, 0, 1-n), To: today}, ""
}

// childColumns are the sortable columns of the child-unit table.
var childColumns = map[string]func(f syncproto.Figures) float64{
	"received":  func(f syncproto.Figures) float64 { return float64(f.Received) },
	"dissuaded": func(f syncproto.Figures) float64 { return float64(f.Dissuaded) },
	"overdue":   func(f syncproto.Figures) float64 { return float64(f.Overdue) },
	"closed":    func(f syncproto.Figures) float64 { return float64(f.Closed) },
	"rate":      func(f syncproto.Figures) float64 { return f.ClosureRate },
	"contact":   func(f syncproto.Figures) float64 { return float64(f.FirstContact.Median) },
}

// todoLink is one count of the to-do panel and the list it stands for.
type todoLink struct {
	Label string
	N     int64
	Href  string
	Warn  bool
}

// openStatuses are the list's statuses of a warning not yet resolved.
var openStatuses = strings.Join([]string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned, syncproto.WarningInProgress}, ",")

// listHref is the warning list of unit filtered by the query in kv
// (name, value, ...), soonest deadline first. Its status is empty (every
// status) unless kv names one: the list's own default is the unfinished.
// search=none drops an earlier free-text search, so the list holds what
// the count that links to it says.
func listHref(unit string, kv ...string) string {
	v := url.Values{"unit": {unit}, "sort": {store.SortDeadline}, "status": {""}, "search": {"none"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "/console/warnings?" + v.Encode()
}

// todoPanel is the to-do of a unit by its level: a township lead's own
// queues; a county's escalations and overdue by township; the center's
// warnings to dispatch and overdue by county.
type todoPanel struct {
	Level string
	Links []todoLink
	// Rows are the children's escalations and overdue (county, center).
	Rows []todoRow
}

type todoRow struct {
	Name, Code                 string
	Escalated, Overdue         int64
	EscalatedHref, OverdueHref string
}

func buildTodo(t *store.TodoResponse) todoPanel {
	u := t.Unit
	escalated := func(unit string) string { return listHref(unit, "escalated", "1", "status", openStatuses) }
	// Overdue warnings are open ones: naming their statuses lets the list
	// read the unfinished index, not every closed warning before them.
	overdue := func(unit string) string { return listHref(unit, "overdue", "1", "status", openStatuses) }
	p := todoPanel{Level: syncproto.UnitLevel(u)}
	switch p.Level {
	case syncproto.RoleVillage:
		// A village's own page, reached from a township's rows: its work
		// waiting on the village.
		p.Links = []todoLink{
			{"待审核", t.Total.Resolved, listHref(u, "status", syncproto.WarningResolved), false},
			{"逾期", t.Total.Overdue, overdue(u), true},
			{"求助", t.Total.Escalated, escalated(u), true},
			{"冲突标记", t.Total.Flagged, listHref(u, "flagged", "1"), false},
		}
	case syncproto.RoleTownship:
		p.Links = []todoLink{
			{"待审核", t.Total.Resolved, listHref(u, "status", syncproto.WarningResolved), false},
			{"待指派", t.Total.Dispatched, listHref(u, "status", syncproto.WarningDispatched), false},
			{"逾期", t.Total.Overdue, overdue(u), true},
			{"求助", t.Total.Escalated, escalated(u), true},
			{"冲突标记", t.Total.Flagged, listHref(u, "flagged", "1"), false},
		}
	case syncproto.RoleCounty:
		p.Links = []todoLink{
			{"乡镇求助", t.Total.Escalated, escalated(u), true},
			{"逾期", t.Total.Overdue, overdue(u), true},
		}
	default:
		p.Links = []todoLink{
			{"待下发", t.Total.New, listHref(u, "status", syncproto.WarningNew), false},
			{"逾期", t.Total.Overdue, overdue(u), true},
			{"求助", t.Total.Escalated, escalated(u), true},
		}
	}
	for _, ch := range t.Children {
		p.Rows = append(p.Rows, todoRow{Name: ch.Name, Code: ch.Unit, Escalated: ch.Escalated, Overdue: ch.Overdue,
			EscalatedHref: escalated(ch.Unit), OverdueHref: overdue(ch.Unit)})
	}
	return p
}

// unitRow is a row of the unit table: a child, the unit's own warnings
// not in any child (本级), or the total.
type unitRow struct {
	Name, Code string
	F          syncproto.Figures
	// Dashboard and List link to the unit's dashboard and its warnings.
	Dashboard, List string
}

// ownRow is what of total no child holds: the warnings kept at the unit
// itself (the center's not yet dispatched), so that the rows add up to
// the total row. Only the scalar counts are split.
func ownRow(total syncproto.Figures, children []syncproto.UnitFigures) syncproto.Figures {
	own := total
	own.FirstContact, own.Resolution, own.Closing, own.ClosureRate = syncproto.Quantiles{}, syncproto.Quantiles{}, syncproto.Quantiles{}, 0
	for _, ch := range children {
		f := ch.Figures
		own.Received -= f.Received
		own.Dispatched -= f.Dispatched
		own.Assigned -= f.Assigned
		own.Reached -= f.Reached
		own.Dissuaded -= f.Dissuaded
		own.AlreadyDefrauded -= f.AlreadyDefrauded
		own.LossFen -= f.LossFen
		own.NotTarget -= f.NotTarget
		own.Unreachable -= f.Unreachable
		own.Refused -= f.Refused
		own.Resolved -= f.Resolved
		own.Closed -= f.Closed
		own.Overdue -= f.Overdue
	}
	if own.Received > 0 {
		own.ClosureRate = float64(own.Closed) / float64(own.Received)
	}
	return own
}

// dashboardData reads what the dashboard and the wall show.
func (c *Console) dashboardData(ctx echo.Context) (map[string]any, error) {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	per, msg := readPeriod(ctx, c.now())
	unit := ctx.QueryParam("unit")
	stats, err := c.app.Stats(p, app.StatsQuery{Unit: unit, From: per.From, To: per.To})
	if err != nil {
		return nil, err
	}
	todo, err := c.app.Todo(p, stats.Unit)
	if err != nil {
		return nil, err
	}
	sortBy := ctx.QueryParam("sort")
	key, ok := childColumns[sortBy]
	if !ok {
		sortBy, key = "received", childColumns["received"]
	}
	children := slices.Clone(stats.Children)
	slices.SortStableFunc(children, func(a, b syncproto.UnitFigures) int { return cmp.Compare(key(b.Figures), key(a.Figures)) })
	q := per.Query()
	rows := make([]unitRow, 0, len(children)+1)
	for _, ch := range children {
		rows = append(rows, unitRow{Name: ch.Name, Code: ch.Unit, F: ch.Figures,
			Dashboard: "/console/?unit=" + ch.Unit + "&" + q, List: listHref(ch.Unit, "from", per.From.Format(time.DateOnly), "to", per.To.Format(time.DateOnly))}) // the list's to includes its day
	}
	if own := ownRow(stats.Total, stats.Children); len(children) > 0 && own.Received > 0 {
		rows = append(rows, unitRow{Name: "本级（未下发到下级）", Code: stats.Unit, F: own, List: listHref(stats.Unit, "status", syncproto.WarningNew)})
	}
	t := stats.Total
	return map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Unit": stats.Name, "Code": stats.Unit, "Level": syncproto.UnitLevel(stats.Unit),
		"Own": stats.Unit == p.Actor.Unit, "Up": upLink(p.Actor.Unit, stats.Unit, q),
		"Period": per, "Query": template.URL(q), "From": per.From.Format(time.DateOnly), "To": per.To.Format(time.DateOnly),
		"Message": msg, "T": t, "InProgress": t.Received - t.Resolved, "ToReview": t.Resolved - t.Closed,
		"NoOutcome": t.Received - t.Dissuaded - t.AlreadyDefrauded - t.NotTarget - t.Unreachable - t.Refused,
		"Todo":      buildTodo(todo), "Rows": rows, "Sort": sortBy,
		"DailyChart": dailyChart(stats, per.From, per.To), "TypeChart": typeChart(stats.Types),
		"RankChart": rankChart(children, sortBy),
	}, nil
}

// upLink is the dashboard of the unit above shown, while it is still in
// the user's scope; empty at the user's own unit.
func upLink(own, shown, q string) string {
	if shown == own || shown == "" {
		return ""
	}
	return "/console/?unit=" + syncproto.ParentCode(shown) + "&" + q
}

// dashboard shows a unit (the user's, or one below it by ?unit=): the
// to-do panel, the figures of the chosen period, charts and each child
// unit; with ?wall=1 the wall view.
func (c *Console) dashboard(ctx echo.Context) error {
	if ctx.QueryParam("wall") == "1" {
		return c.wall(ctx)
	}
	data, err := c.dashboardData(ctx)
	if err != nil {
		return c.dashboardError(ctx, err)
	}
	return c.render(ctx, http.StatusOK, "dashboard", data)
}

// wall is the dashboard for a screen on the center's wall: no navigation,
// large type, and the page reloads itself every minute.
func (c *Console) wall(ctx echo.Context) error {
	data, err := c.dashboardData(ctx)
	if err != nil {
		return c.dashboardError(ctx, err)
	}
	data["Refresh"] = wallRefreshSeconds
	var b strings.Builder
	if err := c.wallPage.Execute(&b, data); err != nil {
		return err
	}
	return ctx.HTML(http.StatusOK, b.String())
}

// wallRefreshSeconds is how often the wall reloads.
const wallRefreshSeconds = 60

// dashboardError answers a unit out of the user's scope or not a unit.
func (c *Console) dashboardError(ctx echo.Context, err error) error {
	e := syncproto.AsError(err)
	if e == nil {
		return err
	}
	return ctx.HTML(e.Status(), `<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>无法显示</title>`+
		`<link rel="stylesheet" href="`+c.path("/console/static/style.css")+`"><main><p>这个单位不存在，或不在您的辖区内。</p><p><a href="`+c.path("/console/")+`">返回概览</a></p></main></html>`)
}
