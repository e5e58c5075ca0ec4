package console

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

var funcs = template.FuncMap{
	"percent": func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"minutes": func(q syncproto.Quantiles) string {
		if q.N == 0 {
			return "—"
		}
		if q.Median < 120 {
			return fmt.Sprintf("%d 分钟", q.Median)
		}
		return fmt.Sprintf("%.1f 小时", float64(q.Median)/60)
	},
	"yuan":       func(fen int64) string { return fmt.Sprintf("%.2f", float64(fen)/100) },
	"inProgress": func(f syncproto.Figures) int64 { return f.Received - f.Resolved },
}

// bar is one day of the trend chart.
type bar struct {
	Day              string
	Received, Closed int64
	X, Y, Height     int
}

// childColumns are the sortable columns of the child-unit table.
var childColumns = map[string]func(f syncproto.Figures) float64{
	"received": func(f syncproto.Figures) float64 { return float64(f.Received) },
	"overdue":  func(f syncproto.Figures) float64 { return float64(f.Overdue) },
	"closed":   func(f syncproto.Figures) float64 { return float64(f.Closed) },
	"rate":     func(f syncproto.Figures) float64 { return f.ClosureRate },
	"contact":  func(f syncproto.Figures) float64 { return float64(f.FirstContact.Median) },
}

// dashboard shows the user's unit: today's figures, the last week's trend
// and each child unit, all from the statistics API.
func (c *Console) dashboard(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	today := syncproto.DayStart(c.now())
	week := today.AddDate(0, 0, -6)
	todayStats, err := c.app.Stats(p, app.StatsQuery{From: today, To: today})
	if err != nil {
		return err
	}
	weekStats, err := c.app.Stats(p, app.StatsQuery{From: week, To: today})
	if err != nil {
		return err
	}
	sortBy := ctx.QueryParam("sort")
	key, ok := childColumns[sortBy]
	if !ok {
		sortBy, key = "received", childColumns["received"]
	}
	children := slices.Clone(weekStats.Children)
	slices.SortStableFunc(children, func(a, b syncproto.UnitFigures) int { return cmp.Compare(key(b.Figures), key(a.Figures)) })
	return c.render(ctx, http.StatusOK, "dashboard", map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Unit": todayStats.Name, "Today": todayStats.Total, "Week": weekStats.Total,
		"Children": children, "Sort": sortBy, "Bars": trend(weekStats, week.Format(time.DateOnly)),
		"From": week.Format(time.DateOnly), "To": today.Format(time.DateOnly),
	})
}

// trend lays out the daily bars of the week as SVG coordinates, days with
// no warning included.
func trend(s *syncproto.StatsResponse, from string) []bar {
	byDay := map[string]syncproto.Figures{}
	var top int64 = 1
	for _, d := range s.Daily {
		byDay[d.Day] = d.Figures
		top = max(top, d.Figures.Received)
	}
	start, _ := time.Parse(time.DateOnly, from)
	bars := make([]bar, 7)
	for i := range bars {
		day := start.AddDate(0, 0, i).Format(time.DateOnly)
		f := byDay[day]
		h := int(f.Received * 100 / top)
		bars[i] = bar{Day: day[5:], Received: f.Received, Closed: f.Closed, Height: h, X: 10 + i*40, Y: 110 - h}
	}
	return bars
}
