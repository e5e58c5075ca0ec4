package console_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestConsole_BrowserDashboard: each role's dashboard and the center's
// wall, in a real browser at a desk's 1366 px and a phone's 390 px: the
// to-do panel and the charts are drawn, and no page is wider than the
// screen. The screenshots are left in the artifacts folder for people.
func TestConsole_BrowserDashboard(t *testing.T) {
	srv := dashboardWorld(t)
	dir := artifacts(t)
	for _, user := range []string{"leadA", "county1", "center1"} {
		steps := openChromium(t, srv.URL+"/console/login")
		do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			if err := chromedp.Do(steps, actions...); err != nil {
				t.Fatalf("%s: %s: %v", user, what, err)
			}
		}
		do("sign in",
			chromedp.WaitVisible(`input[name=username]`),
			chromedp.SendKeys(`input[name=username]`, user),
			chromedp.SendKeys(`input[name=password]`, servertest.CityPassword),
			chromedp.Submit(`input[name=password]`),
			chromedp.WaitVisible(`.todo-item`))
		pages := []string{"/console/?range=30d"}
		if user == "center1" {
			pages = append(pages, "/console/wall?range=30d")
		}
		for i, path := range pages {
			for _, width := range []int64{1366, 390} {
				do("open "+path, chromedp.EmulateViewport(width, 844), chromedp.Navigate(srv.URL+path), chromedp.WaitVisible(`svg.chart.daily`))
				wide, err := chromedp.Run(steps, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if wide > width {
					t.Errorf("%s %s at %d px is %d px wide", user, path, width, wide)
				}
				png, err := chromedp.Run(steps, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot: %v", err)
				}
				name := map[int]string{0: "dashboard", 1: "wall"}[i]
				if err := os.WriteFile(filepath.Join(dir, name+"-"+user+"-"+map[int64]string{1366: "desk", 390: "phone"}[width]+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
