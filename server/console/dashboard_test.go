package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// dashboardWorld is the small city with warnings waiting for each role:
// one at the center not dispatched (N1), one at the county (N2), one in
// village A2 waiting for assignment (D1, overdue), one assigned and
// overdue (A1), two resolved waiting for review (R1 dissuaded, R2
// defrauded of 92,086 yuan), one still in progress after an unreachable
// attempt flagged for its future time (F1), one escalated (E1) and one
// overdue in township B (B1).
func dashboardWorld(t *testing.T) *servertest.Server {
	t.Helper()
	// The server's clock runs with the wall clock but reads about noon,
	// Beijing time, of today's Beijing date: the world's warnings, five
	// hours old at most, then fall on today whenever the test runs, and
	// the tests' dates (today's, from the wall clock) are the server's.
	y, m, d := time.Now().In(syncproto.Beijing).Date()
	clock := &fakeclock.Offset{}
	clock.Add(time.Until(time.Date(y, m, d, 12, 0, 0, 0, syncproto.Beijing)))
	srv := servertest.Start(t, servertest.Options{Now: clock.Now})
	srv.LoadCity(t)
	now := clock.Now()
	recent, late := now.Add(-time.Hour), now.Add(-5*time.Hour)
	ids := srv.Import(t, "center1",
		servertest.FeedRow("N1", servertest.UnitCity, syncproto.RiskHigh, recent),
		servertest.FeedRow("N2", servertest.UnitCounty, syncproto.RiskHigh, recent),
		servertest.FeedRow("D1", servertest.UnitVillA2, syncproto.RiskHigh, late),
		servertest.FeedRow("A1", servertest.UnitVillA1, syncproto.RiskHigh, late),
		servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskHigh, recent),
		servertest.FeedRow("R2", servertest.UnitVillA1, syncproto.RiskHigh, recent),
		servertest.FeedRow("F1", servertest.UnitVillA1, syncproto.RiskHigh, recent),
		servertest.FeedRow("E1", servertest.UnitVillA1, syncproto.RiskHigh, recent),
		servertest.FeedRow("B1", servertest.UnitVillB1, syncproto.RiskHigh, late))
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	no, yes := false, true
	ops := []syncproto.Op{
		attempt(ids["R1"], now, syncproto.Attempt{Reached: true, Outcome: syncproto.OutcomeDissuaded}, &yes, 0),
		attempt(ids["R2"], now, syncproto.Attempt{Reached: true, Outcome: syncproto.OutcomeAlreadyDefrauded}, &yes, 9_208_600),
		attempt(ids["F1"], now.Add(time.Hour), syncproto.Attempt{Outcome: syncproto.OutcomeUnreachable}, &no, 0),
		{ID: uuid.Must(uuid.NewV7()).String(), Type: syncproto.OpEscalated, WarningID: ids["E1"], At: now.UTC(), Body: syncproto.OpBody{Reason: "家属不配合，请求派出所协助"}},
	}
	for i := range ops {
		ops[i].ClientSeq = uint64(i + 1)
	}
	resp, err := a1.Push(context.Background(), syncproto.PushRequest{DeviceID: a1.ID, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("the world's ops: %+v", resp.Results)
		}
	}
	return srv
}

// attempt is a cadre's dissuasion record of warning id at at.
func attempt(id string, at time.Time, a syncproto.Attempt, reached *bool, lossFen int64) syncproto.Op {
	return syncproto.Op{ID: uuid.Must(uuid.NewV7()).String(), Type: syncproto.OpRecorded, WarningID: id, At: at.UTC(),
		Body: syncproto.OpBody{AttemptID: uuid.Must(uuid.NewV7()).String(), Method: syncproto.MethodPhone, Reached: reached, Outcome: a.Outcome, LossFen: lossFen}}
}

var (
	todoLinkRe = regexp.MustCompile(`href="([^"]+)" data-todo="([^"]+)"><span class="label">[^<]*</span><span class="value">([\d,]+)</span>`)
	todoUnitRe = regexp.MustCompile(`<a href="([^"]+)" data-todo-unit="(\d+)" data-todo-kind="(\w+)">([\d,]+)</a>`)
	figureRe   = regexp.MustCompile(`data-figure="(\w+)">([^<]+)<`)
)

// number reads a count as the dashboard writes it (1,234).
func number(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}

// listRows follows a to-do link to the list and counts its warnings.
func listRows(t *testing.T, b *browser, href string) int64 {
	t.Helper()
	resp, page := b.do("GET", html.UnescapeString(href), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", href, resp.StatusCode)
	}
	return int64(len(warningLink.FindAllStringSubmatch(page, -1)))
}

// checkTodo signs user in, reads the to-do panel's counts, checks them
// against want (label -> count) and checks that each link's list holds
// that many warnings; the escalation link's list filter is another
// task's, so only its address is checked.
func checkTodo(t *testing.T, srv *servertest.Server, user string, want map[string]int64) *browser {
	t.Helper()
	b := newBrowser(t, srv.URL)
	if resp := b.login(user); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d", user, resp.StatusCode)
	}
	// A search made earlier, which matches nothing, must not empty the
	// lists the counts link to.
	_, list := b.do("GET", "/console/warnings", nil, nil)
	search(t, b, csrfOf(t, list), "没有这个人", url.Values{})
	_, page := b.do("GET", "/console/", nil, nil)
	got := map[string]int64{}
	for _, m := range todoLinkRe.FindAllStringSubmatch(page, -1) {
		href, label, n := m[1], m[2], number(t, m[3])
		got[label] = n
		if strings.Contains(href, "escalated=1") && !strings.Contains(href, "status=new%2Cdispatched%2Cassigned%2Cin_progress") {
			t.Errorf("%s: the escalation link %s does not keep to open warnings", user, href)
		}
		if rows := listRows(t, b, href); rows != n {
			t.Errorf("%s: %s shows %d, its list %s holds %d", user, label, n, href, rows)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: to-do counts %v, want %v", user, got, want)
	}
	return b
}

func TestDashboard_TodoLead(t *testing.T) {
	srv := dashboardWorld(t)
	checkTodo(t, srv, "leadA", map[string]int64{"待审核": 2, "待指派": 1, "逾期": 2, "求助": 1, "冲突标记": 1})
	checkTodo(t, srv, "leadB", map[string]int64{"待审核": 0, "待指派": 0, "逾期": 1, "求助": 0, "冲突标记": 0})

	// A village's page, reached from the lead's rows, has the village's
	// own to-do, each count equal to its list.
	b := newBrowser(t, srv.URL)
	b.login("leadA")
	_, page := b.do("GET", "/console/?unit="+servertest.UnitVillA1, nil, nil)
	got := map[string]int64{}
	for _, m := range todoLinkRe.FindAllStringSubmatch(page, -1) {
		got[m[2]] = number(t, m[3])
		if rows := listRows(t, b, m[1]); rows != got[m[2]] {
			t.Errorf("village %s shows %d, its list holds %d", m[2], got[m[2]], rows)
		}
	}
	if want := map[string]int64{"待审核": 2, "逾期": 1, "求助": 1, "冲突标记": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("village A1's to-do %v, want %v", got, want)
	}
}

func TestDashboard_TodoCountyAndCenter(t *testing.T) {
	srv := dashboardWorld(t)
	county := checkTodo(t, srv, "county1", map[string]int64{"乡镇求助": 1, "逾期": 3})
	center := checkTodo(t, srv, "center1", map[string]int64{"待下发": 1, "逾期": 3, "求助": 1})
	// Each township (for the county) and county (for the center) has its
	// escalations and overdue, each a link to its list.
	for _, tc := range []struct {
		b    *browser
		want map[string]int64
	}{
		{county, map[string]int64{servertest.UnitTownA + "/escalated": 1, servertest.UnitTownA + "/overdue": 2, servertest.UnitTownB + "/escalated": 0, servertest.UnitTownB + "/overdue": 1}},
		{center, map[string]int64{servertest.UnitCounty + "/escalated": 1, servertest.UnitCounty + "/overdue": 3}},
	} {
		_, page := tc.b.do("GET", "/console/", nil, nil)
		got := map[string]int64{}
		for _, m := range todoUnitRe.FindAllStringSubmatch(page, -1) {
			href, key, n := m[1], m[2]+"/"+m[3], number(t, m[4])
			got[key] = n
			if m[3] == "overdue" {
				if rows := listRows(t, tc.b, href); rows != n {
					t.Errorf("%s shows %d, its list holds %d", key, n, rows)
				}
			} else if !strings.Contains(href, "escalated=1") || !strings.Contains(href, "unit="+m[2]) {
				t.Errorf("%s links to %s", key, href)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("counts by unit %v, want %v", got, tc.want)
		}
	}
}

// figures reads the dashboard's figures by name.
func figures(t *testing.T, page string) map[string]string {
	t.Helper()
	f := map[string]string{}
	for _, m := range figureRe.FindAllStringSubmatch(page, -1) {
		f[m[1]] = m[2]
	}
	return f
}

func TestDashboard_FiguresEqualStats(t *testing.T) {
	srv := dashboardWorld(t)
	b := newBrowser(t, srv.URL)
	b.login("center1")
	resp, page := b.do("GET", "/console/?range=30d", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	today := time.Now().In(syncproto.Beijing)
	from := today.AddDate(0, 0, -29).Format(time.DateOnly)
	var stats syncproto.StatsResponse
	api := srv.Login(t, "center1", servertest.CityPassword)
	if err := api.Do(context.Background(), "GET", "/v1/stats?from="+from+"&to="+today.Format(time.DateOnly), nil, &stats); err != nil {
		t.Fatal(err)
	}
	f, s := figures(t, page), stats.Total
	for name, want := range map[string]int64{"received": s.Received, "dispatched": s.Dispatched, "reached": s.Reached, "dissuaded": s.Dissuaded,
		"already_defrauded": s.AlreadyDefrauded, "unreachable": s.Unreachable, "not_target": s.NotTarget, "refused": s.Refused,
		"overdue": s.Overdue, "closed": s.Closed} {
		if got := number(t, f[name]); got != want {
			t.Errorf("%s: the page shows %d, /v1/stats %d", name, got, want)
		}
	}
	if s.Received != 9 || s.AlreadyDefrauded != 1 || s.LossFen != 9_208_600 || s.Overdue != 3 {
		t.Fatalf("the world's statistics: %+v", s)
	}
	// A unit row's list covers the same days: to names the period's last
	// day, which the list includes.
	rowList := regexp.MustCompile(`href="/console/warnings\?[^"]*from=` + from + `[^"]*"`).FindString(page)
	if !strings.Contains(rowList, "to="+today.Format(time.DateOnly)) {
		t.Errorf("a unit row's list is %q, want the 30 days up to %s", rowList, today.Format(time.DateOnly))
	}
	if f["loss_yuan"] != "92,086.00" || !strings.Contains(page, "被骗金额") || strings.Contains(page, "已被骗（元）") {
		t.Errorf("loss shows %q", f["loss_yuan"])
	}
	if f["dissuaded_rate"] != "11.1%" {
		t.Errorf("dissuasion rate %q, want 1 of 9", f["dissuaded_rate"])
	}
	if !strings.Contains(page, `name="from" value="`+from+`"`) {
		t.Errorf("the range is not shown in the form")
	}
}

func TestDashboard_CardsAndRowsAddUp(t *testing.T) {
	srv := dashboardWorld(t)
	b := newBrowser(t, srv.URL)
	b.login("center1")
	_, page := b.do("GET", "/console/", nil, nil)
	f := figures(t, page)
	n := func(name string) int64 { return number(t, f[name]) }
	if n("received") != n("in_progress")+n("to_review")+n("closed") {
		t.Errorf("progress cards do not add up: %v", f)
	}
	if n("received") != n("dissuaded")+n("already_defrauded")+n("unreachable")+n("not_target")+n("refused")+n("no_outcome") {
		t.Errorf("outcome cards do not add up: %v", f)
	}
	// The unit rows (the county and the center's own) add up to the
	// total row, column by column.
	rowRe := regexp.MustCompile(`(?s)<tr(?: class="total")? data-unit="(\w+)">(.*?)</tr>`)
	cellRe := regexp.MustCompile(`data-col="(\w+)">([^<]+)<`)
	sums, total := map[string]int64{}, map[string]int64{}
	rows := 0
	for _, m := range rowRe.FindAllStringSubmatch(page, -1) {
		for _, c := range cellRe.FindAllStringSubmatch(m[2], -1) {
			v := number(t, strings.ReplaceAll(strings.Split(c[2], ".")[0], ",", ""))
			if m[1] == "total" {
				total[c[1]] = v
			} else {
				sums[c[1]] += v
			}
		}
		if m[1] != "total" {
			rows++
		}
	}
	if rows != 2 || len(total) == 0 || fmt.Sprint(sums) != fmt.Sprint(total) {
		t.Errorf("%d rows sum to %v, the total row is %v", rows, sums, total)
	}
	if total["received"] != n("received") {
		t.Errorf("total row received %d, card %d", total["received"], n("received"))
	}
	// A unit row leads to that unit's dashboard and its list.
	link := regexp.MustCompile(`<a href="(/console/\?unit=` + servertest.UnitCounty + `[^"]*)"`).FindStringSubmatch(page)
	if link == nil {
		t.Fatal("no link to the county's dashboard")
	}
	if resp, county := b.do("GET", html.UnescapeString(link[1]), nil, nil); resp.StatusCode != 200 || !strings.Contains(county, "魏都区 · 工作概览") || !strings.Contains(county, "西大街街道") {
		t.Errorf("county dashboard from the center: %d", resp.StatusCode)
	}
	list := regexp.MustCompile(`<a href="(/console/warnings\?[^"]*unit=` + servertest.UnitCounty + `[^"]*)">查看预警`).FindStringSubmatch(page)
	if list == nil {
		t.Fatal("no link to the county's warnings")
	}
	if got := listRows(t, b, list[1]); got != 8 {
		t.Errorf("the county's list holds %d warnings, want 8", got)
	}
	// A lead may not look at another township.
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	if resp, _ := lead.do("GET", "/console/?unit="+servertest.UnitTownB, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("leadA reads township B's dashboard: %d", resp.StatusCode)
	}
}

func TestDashboard_ChartsHaveAxesAndValues(t *testing.T) {
	srv := dashboardWorld(t)
	b := newBrowser(t, srv.URL)
	b.login("center1")
	_, page := b.do("GET", "/console/?range=today", nil, nil)
	day := time.Now().In(syncproto.Beijing).Format("01-02")
	for _, want := range []string{
		`<svg class="chart daily"`, `class="axis"`, `<title>` + day + ` 接收 9</title>`, `class="value">9</text>`, `class="tick">` + day + `</text>`,
		`<svg class="chart types"`, `>刷单返利</text>`, `<title>刷单返利 劝阻成功 1</title>`,
		`<svg class="chart rank"`, `>1. 魏都区</text>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the charts lack %s", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") {
		t.Error("the dashboard has inline script or style, which the CSP refuses")
	}
}

func TestDashboard_WallRefreshes(t *testing.T) {
	srv := dashboardWorld(t)
	b := newBrowser(t, srv.URL)
	b.login("center1")
	for _, path := range []string{"/console/wall", "/console/?wall=1&range=30d"} {
		resp, page := b.do("GET", path, nil, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<meta http-equiv="refresh" content="60">`) ||
			!strings.Contains(page, `<body class="wall">`) || strings.Contains(page, "<nav>") || !strings.Contains(page, `<svg class="chart daily"`) {
			t.Errorf("%s: %d, not a self-refreshing wall", path, resp.StatusCode)
		}
		if number(t, figures(t, page)["received"]) != 9 {
			t.Errorf("%s: the wall's figures %v", path, figures(t, page))
		}
	}
	// Without a session the wall sends to the sign-in page, as every page.
	if resp, _ := newBrowser(t, srv.URL).do("GET", "/console/wall", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("wall without a session: %d", resp.StatusCode)
	}
}
