package console_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// dayWorld is the small city on the morning of a working day: warnings of
// today for village A1 (whose one cadre holds them at once), older ones
// inside and outside a 30-day range, one of township B and one the center
// has not dispatched. It returns the server and the warnings' ids by
// external id.
func dayWorld(t *testing.T) (*servertest.Server, map[string]string) {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	now := time.Now()
	ids := srv.Import(t, "center1",
		servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskHigh, now.Add(-time.Hour)),
		servertest.FeedRow("R2", servertest.UnitVillA1, syncproto.RiskHigh, now.Add(-2*time.Hour)),
		servertest.FeedRow("E1", servertest.UnitVillA1, syncproto.RiskHigh, now.Add(-3*time.Hour)),
		servertest.FeedRow("M1", servertest.UnitVillA1, syncproto.RiskHigh, now.AddDate(0, 0, -10)),
		servertest.FeedRow("B1", servertest.UnitVillB1, syncproto.RiskHigh, now.AddDate(0, 0, -12)),
		servertest.FeedRow("OLD", servertest.UnitVillA1, syncproto.RiskHigh, now.AddDate(0, 0, -45)),
		servertest.FeedRow("N1", servertest.UnitCity, syncproto.RiskHigh, now.Add(-time.Hour)))
	return srv, ids
}

// cadrePhone is a1's phone, signed in and synced once.
type cadrePhone struct {
	t *testing.T
	*clientsdk.Client
}

func openCadrePhone(t *testing.T, srv *servertest.Server) *cadrePhone {
	t.Helper()
	c, err := clientsdk.Open(t.TempDir(), clientsdk.Options{ServerURL: srv.URL, Key: make([]byte, 32), DeviceName: "test", Platform: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(context.Background(), "a1", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	p := &cadrePhone{t, c}
	p.sync()
	return p
}

// sync pushes what the phone recorded offline and pulls what changed.
func (p *cadrePhone) sync() {
	p.t.Helper()
	if _, err := p.Sync(context.Background()); err != nil {
		p.t.Fatal(err)
	}
}

// record writes an attempt with no signal; sync sends it.
func (p *cadrePhone) record(id string, a clientsdk.Attempt) {
	p.t.Helper()
	if _, err := p.RecordAttempt(id, a); err != nil {
		p.t.Fatal(err)
	}
}

// warning is the phone's view of warning id.
func (p *cadrePhone) warning(id string) clientsdk.Warning {
	p.t.Helper()
	w, ok := p.Warning(id)
	if !ok {
		p.t.Fatalf("the phone has no warning %s", id)
	}
	return w
}

// fen reads an amount as the console writes it (1,234.56 元) in fen.
func fen(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(s), 10, 64)
	if err != nil || !strings.Contains(s, ".") {
		t.Fatalf("not an amount in yuan: %q", s)
	}
	return n
}

// TestConsole_BrowserWorkingDay walks issue 14's working day in one real
// browser against a real server, with the real SDK as the cadre's phone:
// the township lead sees what waits for review, opens it from the to-do
// panel, sends it back with a reason that reaches the phone, and approves
// the redone work; the county answers a request for help from its queue
// and the answer reaches the phone; the center picks 30 days on its
// dashboard and reads the same figures as GET /v1/stats.
func TestConsole_BrowserWorkingDay(t *testing.T) {
	srv, ids := dayWorld(t)
	phone := openCadrePhone(t, srv)

	// The cadre's morning, recorded with no signal and synced at noon:
	// two warnings resolved (so two wait for review), one request for help.
	phone.record(ids["R1"], clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Notes: "已当面劝阻"})
	phone.record(ids["R2"], clientsdk.Attempt{Method: syncproto.MethodPhone, Reached: true, Outcome: syncproto.OutcomeAlreadyDefrauded, LossFen: 123_456})
	if _, err := phone.Escalate(ids["E1"], "家属阻拦，需民警上门"); err != nil {
		t.Fatal(err)
	}
	phone.sync()
	submitted := 0
	for _, w := range phone.Warnings(clientsdk.Filter{}) {
		if w.Status == syncproto.WarningResolved {
			submitted++
		}
	}
	if submitted != 2 {
		t.Fatalf("the cadre submitted %d warnings for review, want 2", submitted)
	}

	steps := openChromium(t, srv.URL+"/console/login")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(steps, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	signIn := func(user string) {
		t.Helper()
		do("sign in "+user, chromedp.WaitVisible(`input[name=username]`),
			chromedp.SendKeys(`input[name=username]`, user),
			chromedp.SendKeys(`input[name=password]`, servertest.CityPassword),
			chromedp.Submit(`input[name=password]`),
			chromedp.WaitVisible(`.todo-item`))
	}
	signOut := func() {
		t.Helper()
		do("sign out", chromedp.Click(`form.logout button`), chromedp.WaitVisible(`input[name=username]`))
	}

	// The lead's to-do: what the cadre submitted waits for review.
	signIn("leadA")
	if got := text(`a[data-todo="待审核"] .value`); got != strconv.Itoa(submitted) {
		t.Fatalf("the lead's 待审核 shows %s; the cadre submitted %d", got, submitted)
	}
	do("open 待审核", chromedp.Click(`a[data-todo="待审核"]`), chromedp.WaitVisible(`table.list`))
	rows, err := chromedp.Run(steps, chromedp.Evaluate[int](`document.querySelectorAll('table.list a[href^="/console/warnings/"]').length`))
	if err != nil || rows != submitted {
		t.Fatalf("the 待审核 list holds %d warnings (%v), want %d", rows, err, submitted)
	}
	r1 := `a[href="/console/warnings/` + ids["R1"] + `"]`
	do("open the warning from the list", chromedp.Click(r1), chromedp.WaitVisible(`form.action-return`))

	// Only what a resolved warning allows, and no return without a reason.
	forms, err := chromedp.Run(steps, chromedp.Evaluate[string](
		`[...document.querySelectorAll('form[class^=action-]')].map(f => f.className).join(',')`))
	if err != nil {
		t.Fatal(err)
	}
	if forms != "action-approve,action-return,action-escalate" {
		t.Fatalf("the resolved warning offers %s", forms)
	}
	missing, err := chromedp.Run(steps, chromedp.Evaluate[bool](
		`document.querySelector('form.action-return textarea').validity.valueMissing && !document.querySelector('form.action-return').checkValidity()`))
	if err != nil || !missing {
		t.Fatalf("the browser would send a return without a reason (%v)", err)
	}
	do("return with a reason",
		chromedp.SendKeys(`form.action-return textarea`, "请补充现场照片"),
		chromedp.Click(`button[value=return]`),
		chromedp.WaitVisible(`.notice`))

	// The cadre's phone: the reason and who gave it; the work redone.
	phone.sync()
	if w := phone.warning(ids["R1"]); w.Status != syncproto.WarningAssigned {
		t.Fatalf("the cadre's phone sees %s after the return", w.Status)
	} else if r, ok := w.LastReturn(); !ok || r.Comment != "请补充现场照片" || r.ByName != "王镇甲" {
		t.Fatalf("the cadre's phone sees the return %+v", r)
	}
	phone.record(ids["R1"], clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Notes: "再次上门，已补拍照片"})
	phone.sync()

	// The lead approves the redone work; the page and the phone say closed.
	do("reopen the warning", chromedp.Navigate(srv.URL+"/console/warnings/"+ids["R1"]), chromedp.WaitVisible(`form.action-approve`))
	do("approve", chromedp.Click(`button[value=approve]`), chromedp.WaitVisible(`.notice`))
	if got := text(`h1 .badge`); got != "已办结" {
		t.Fatalf("after approving the page shows %q", got)
	}
	if got := text(`.reviews`); !strings.Contains(got, "请补充现场照片") || !strings.Contains(got, "王镇甲") {
		t.Errorf("the reviews on the page: %q", got)
	}
	phone.sync()
	if w := phone.warning(ids["R1"]); w.Status != syncproto.WarningClosed {
		t.Fatalf("the cadre's phone sees %s after the lead approved", w.Status)
	}
	signOut()

	// The county's queue of requests for help, answered in the browser.
	signIn("county1")
	if got := text(`a[data-todo="乡镇求助"] .value`); got != "1" {
		t.Fatalf("the county's 乡镇求助 shows %s, want the cadre's one request", got)
	}
	do("the county's queue", chromedp.Click(`a[data-todo="乡镇求助"]`), chromedp.WaitVisible(`table.list`))
	do("open the request", chromedp.Click(`a[href="/console/warnings/`+ids["E1"]+`"]`), chromedp.WaitVisible(`form.action-answer`))
	if got := text(`.escalations`); !strings.Contains(got, "家属阻拦，需民警上门") || !strings.Contains(got, "刘村一") {
		t.Fatalf("the request on the county's page: %q", got)
	}
	do("answer",
		chromedp.SendKeys(`form.action-answer textarea`, "已联系派出所，今晚上门"),
		chromedp.Click(`button[value=answer]`),
		chromedp.WaitVisible(`.notice`))
	phone.sync()
	w := phone.warning(ids["E1"])
	if e, ok := w.LastEscalation(); !ok || e.Answer != "已联系派出所，今晚上门" || e.AnsweredByName != "李县" || w.Escalated {
		t.Fatalf("the cadre's phone sees escalated %v, %+v", w.Escalated, e)
	}
	do("back to the dashboard", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(`.todo-item`))
	if got := text(`a[data-todo="乡镇求助"] .value`); got != "0" {
		t.Errorf("the answered request still counts in the county's queue: %s", got)
	}
	signOut()

	// The center picks 30 days with the page's range control.
	signIn("center1")
	do("pick 30 days", chromedp.Click(`.ranges a[href$="range=30d"]`), chromedp.WaitVisible(`.ranges a.sorted[href$="range=30d"]`))
	shown, err := chromedp.Run(steps, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(e => [e.dataset.figure, e.textContent.trim()]))`))
	if err != nil {
		t.Fatal(err)
	}
	from, err := chromedp.Run(steps, chromedp.Evaluate[string](`document.querySelector('.period input[name=from]').value`))
	if err != nil {
		t.Fatal(err)
	}
	to, err := chromedp.Run(steps, chromedp.Evaluate[string](`document.querySelector('.period input[name=to]').value`))
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(syncproto.Beijing)
	if to != today.Format(time.DateOnly) || from != today.AddDate(0, 0, -29).Format(time.DateOnly) {
		t.Fatalf("30 days shows %s to %s", from, to)
	}
	var stats syncproto.StatsResponse
	api := srv.Login(t, "center1", servertest.CityPassword)
	if err := api.Do(context.Background(), "GET", "/v1/stats?from="+from+"&to="+to, nil, &stats); err != nil {
		t.Fatal(err)
	}
	s := stats.Total
	// The world: every warning but the one of 45 days ago; the redone
	// R1 dissuaded, R2 defrauded of 1,234.56 yuan.
	if s.Received != 6 || s.Dissuaded != 1 || s.AlreadyDefrauded != 1 || s.LossFen != 123_456 || s.Closed != 1 {
		t.Fatalf("the world's statistics over 30 days: %+v", s)
	}
	for name, want := range map[string]int64{"received": s.Received, "dispatched": s.Dispatched, "reached": s.Reached,
		"dissuaded": s.Dissuaded, "already_defrauded": s.AlreadyDefrauded, "unreachable": s.Unreachable,
		"overdue": s.Overdue, "closed": s.Closed} {
		if got := number(t, shown[name]); got != want {
			t.Errorf("%s: the page shows %d, /v1/stats %d", name, got, want)
		}
	}
	if got := fen(t, shown["loss_yuan"]); got != s.LossFen {
		t.Errorf("loss: the page shows %s yuan, /v1/stats %d fen", shown["loss_yuan"], s.LossFen)
	}
}
