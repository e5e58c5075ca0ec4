package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// phoneWidth is the CSS width of a common phone's screen.
const phoneWidth = 390

// TestConsole_PhoneWidth opens every page of the console, as each role
// sees it, at 390 px: none scrolls sideways, and no link of the
// navigation breaks across lines (导出反/馈).
func TestConsole_PhoneWidth(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, _ := signedIn(t, srv, "leadA")
	_, list := lead.do("GET", "/console/warnings", nil, nil)
	warning := "/console/warnings/" + linkTo(t, list, "测试C1")
	recordAttempt(t, srv.Login(t, "a1", servertest.CityPassword), linkTo(t, list, "测试C1"))

	steps := openChromium(t, srv.URL+"/console/login")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("phone size", chromedp.EmulateViewport(phoneWidth, 844))
	check := func(who, path string) {
		t.Helper()
		do(who+" "+path, chromedp.Navigate(srv.URL+path), chromedp.WaitReady(`main`))
		width, err := chromedp.Run(steps, chromedp.Evaluate[int](`document.scrollingElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if width > phoneWidth {
			t.Errorf("%s %s is %d px wide at %d px", who, path, width, phoneWidth)
		}
		// An inline link broken across lines has a box per line.
		broken, err := chromedp.Run(steps, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll('nav a')).filter(a => a.getClientRects().length > 1).map(a => a.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(broken) > 0 {
			t.Errorf("%s %s: the nav breaks %s", who, path, strings.Join(broken, ", "))
		}
	}
	pages := map[string][]string{
		"leadA":           {"/console/", "/console/warnings", warning, "/console/flags", "/console/feed", "/console/nothing-here"},
		"county1":         {"/console/", "/console/warnings", warning},
		"center1":         {"/console/", "/console/warnings", "/console/feed"},
		app.AdminUsername: {"/console/", "/console/admin"},
	}
	check("anyone", "/console/login")
	for _, who := range []string{"leadA", "county1", "center1", app.AdminUsername} {
		password := servertest.CityPassword
		if who == app.AdminUsername {
			password = servertest.AdminPassword
		}
		do("sign in "+who, chromedp.Navigate(srv.URL+"/console/login"), chromedp.WaitVisible(`input[name=username]`),
			chromedp.SendKeys(`input[name=username]`, who), chromedp.SendKeys(`input[name=password]`, password),
			chromedp.Submit(`input[name=password]`), chromedp.WaitVisible(`.logout`))
		for _, path := range pages[who] {
			check(who, path)
		}
		do("sign out "+who, chromedp.Click(`.logout button`), chromedp.WaitVisible(`input[name=username]`))
	}
}
