package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// accountsWorld is a server with a township of 60 villages, one cadre
// each: 61 accounts with the admin, two pages of them.
func accountsWorld(t *testing.T) *servertest.Server {
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadTree(t, servertest.Township(60))
	return srv
}

// cadre is the username of the cadre of the township's n-th village.
func cadre(n int) string {
	return demo.CadreUsername(fmt.Sprintf("%s%03d", servertest.UnitTownA, n), 1)
}

// searchAccounts posts the accounts search form and follows its redirect.
func searchAccounts(t *testing.T, b *browser, q, unit string) (location, page string) {
	t.Helper()
	_, form := b.do("GET", "/console/admin", nil, nil)
	resp, _ := b.do("POST", "/console/admin/search", url.Values{"csrf": {csrfOf(t, form)}, "q": {q}, "unit": {unit}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("search %q: %d", q, resp.StatusCode)
	}
	location = resp.Header.Get("Location")
	_, page = b.do("GET", location, nil, nil)
	return location, page
}

// The accounts come 50 a page, by unit then username; the page is in the
// address, with the unit filter, and page 2 holds the rest.
func TestConsole_AccountsPaging(t *testing.T) {
	srv := accountsWorld(t)
	b, _ := adminBrowser(t, srv)
	_, page := b.do("GET", "/console/admin", nil, nil)
	if !strings.Contains(page, "共 61 个账号") || !strings.Contains(page, "第 1 / 2 页") {
		t.Fatal("the first page does not say 61 accounts on 2 pages")
	}
	if !strings.Contains(page, cadre(1)) || strings.Contains(page, cadre(60)) {
		t.Fatal("the first page does not hold the first villages' cadres only")
	}
	if !strings.Contains(page, `href="/console/admin?page=2" rel="next"`) {
		t.Fatal("no link to page 2")
	}
	resp, page := b.do("GET", "/console/admin?page=2", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "第 2 / 2 页") {
		t.Fatalf("page 2: %d", resp.StatusCode)
	}
	if !strings.Contains(page, cadre(60)) || strings.Contains(page, cadre(1)+"<") {
		t.Fatal("page 2 does not hold the last villages' cadres only")
	}
	if got := strings.Count(page, `<td data-label="用户名">`); got != 11 {
		t.Fatalf("page 2 lists %d accounts, want 11", got)
	}
	// The unit filter is in the address, so the view can be bookmarked.
	_, page = b.do("GET", "/console/admin?unit="+servertest.UnitTownA+"058", nil, nil)
	if !strings.Contains(page, "共 1 个账号") || !strings.Contains(page, cadre(58)) {
		t.Fatal("the unit filter in the address does not keep the village's one account")
	}
	// A unit that does not exist shows all, saying so.
	_, page = b.do("GET", "/console/admin?unit=999", nil, nil)
	if !strings.Contains(page, "没有这个单位") || !strings.Contains(page, "共 61 个账号") {
		t.Fatal("an unknown unit in the address is not explained")
	}
}

// The search finds accounts by name, username and unit name; its text
// stays out of the address, and an empty search shows every account again.
func TestConsole_AccountsSearch(t *testing.T) {
	srv := accountsWorld(t)
	tree := servertest.Township(60)
	b, _ := adminBrowser(t, srv)

	name := tree.Users[6].Name // the 7th village's cadre
	location, page := searchAccounts(t, b, name, "")
	if strings.Contains(location, "q=") || strings.Contains(location, url.QueryEscape(name)) {
		t.Fatalf("the search text is in the address %q", location)
	}
	if !strings.Contains(page, cadre(7)) || strings.Contains(page, cadre(8)+"<") {
		t.Fatalf("a search by the name %s does not find its account alone", name)
	}
	unitName := tree.Units[len(tree.Units)-3].Name // the 58th village
	_, page = searchAccounts(t, b, unitName, "")
	if !strings.Contains(page, "共 1 个账号") || !strings.Contains(page, cadre(58)) {
		t.Fatalf("a search by the unit name %s does not find its cadre alone", unitName)
	}
	_, page = searchAccounts(t, b, "ADMIN", servertest.UnitCity)
	if !strings.Contains(page, "共 1 个账号") || !strings.Contains(page, "本人账号") {
		t.Fatal("a search by username, in any case, does not find the admin")
	}
	// Paging keeps the search of the session.
	if _, page := b.do("GET", "/console/admin?page=1", nil, nil); !strings.Contains(page, "共 1 个账号") {
		t.Fatal("the search is lost on the next page view")
	}
	if _, page := searchAccounts(t, b, "", ""); !strings.Contains(page, "共 61 个账号") {
		t.Fatal("an empty search does not show every account again")
	}
}

// The accounts page fits a phone's screen: no sideways scroll at 390 px.
func TestConsole_AccountsPhoneWidth(t *testing.T) {
	srv := accountsWorld(t)
	steps := openChromium(t, srv.URL+"/console/login")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("sign in",
		chromedp.EmulateViewport(390, 844),
		chromedp.WaitVisible(`input[name=username]`),
		chromedp.SendKeys(`input[name=username]`, app.AdminUsername),
		chromedp.SendKeys(`input[name=password]`, servertest.AdminPassword),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`nav`))
	do("accounts", chromedp.Navigate(srv.URL+"/console/admin"), chromedp.WaitVisible(`#accounts`))
	png, err := chromedp.Run(steps, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts(t), "admin-phone.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	wide, err := chromedp.Run(steps, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if wide > 0 {
		t.Fatalf("the accounts page scrolls sideways by %d px at 390 px", wide)
	}
	// Each account is a stack of labelled lines, not a squeezed row.
	stacked, err := chromedp.Run(steps, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector('#accounts thead')).display === 'none'`))
	if err != nil || !stacked {
		t.Fatalf("the accounts table is not stacked at 390 px (%v)", err)
	}
}
