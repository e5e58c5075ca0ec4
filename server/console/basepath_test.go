package console_test

import (
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// base is the base path of these tests, as a province's proxy routes
// Xuchang's console.
const base = "/4110"

// linkAttr finds the addresses a page sends a browser to.
var linkAttr = regexp.MustCompile(`(?:href|src|action|formaction)="([^"]*)"`)

// linksOutside returns the links of page that leave the base path: an
// absolute path not under it, or another host. Links relative to the
// page ("?range=7d"), tel: and data: stay where they are.
func linksOutside(page string) (all, outside []string) {
	for _, m := range linkAttr.FindAllStringSubmatch(page, -1) {
		link := html.UnescapeString(m[1])
		all = append(all, link)
		switch {
		case strings.HasPrefix(link, base+"/"):
		case strings.HasPrefix(link, "?"), strings.HasPrefix(link, "#"), strings.HasPrefix(link, "tel:"), strings.HasPrefix(link, "data:"):
		default:
			outside = append(outside, link)
		}
	}
	return all, outside
}

// crawl opens every console page reachable by links from start, with b's
// session, and fails on any page with a link, or any redirect, outside
// the base path. It returns the pages it opened.
func crawl(t *testing.T, b *browser, start string) map[string]bool {
	t.Helper()
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 && len(seen) < 200 {
		at := queue[0]
		queue = queue[1:]
		resp, page := b.do("GET", strings.TrimPrefix(at, base), nil, nil)
		if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, base+"/") {
			t.Errorf("GET %s redirects outside %s: %s", at, base, loc)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			continue
		}
		all, outside := linksOutside(page)
		for _, l := range outside {
			t.Errorf("page %s links outside %s: %q", at, base, l)
		}
		for _, l := range all {
			if strings.HasPrefix(l, "?") {
				l = strings.SplitN(at, "?", 2)[0] + l
			}
			if !strings.HasPrefix(l, base+"/console/") || seen[l] || strings.Contains(l, "/export/") {
				continue
			}
			seen[l] = true
			queue = append(queue, l)
		}
	}
	return seen
}

func TestConsole_BasePath(t *testing.T) {
	srv := setup(t, servertest.Options{BasePath: base})
	if !strings.HasSuffix(srv.URL, base) {
		t.Fatalf("server URL %s does not end in %s", srv.URL, base)
	}
	root := strings.TrimSuffix(srv.URL, base)
	b := newBrowser(t, srv.URL)

	t.Run("Redirects", func(t *testing.T) {
		for path, want := range map[string]string{base: base + "/console/", base + "/": base + "/console/", base + "/console/": base + "/console/login"} {
			resp, _ := newBrowser(t, root).do("GET", path, nil, nil)
			if got := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || got != want {
				t.Errorf("GET %s: %d to %q, want a redirect to %q", path, resp.StatusCode, got, want)
			}
		}
	})
	t.Run("OutsideIsNotFound", func(t *testing.T) {
		for _, path := range []string{"/", "/console/", "/v1/healthz", "/41100/v1/healthz", "/metrics"} {
			resp, body := newBrowser(t, root).do("GET", path, nil, nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
				t.Errorf("GET %s outside the base path: %d %s", path, resp.StatusCode, body)
			}
		}
		if resp, _ := b.do("GET", "/v1/healthz", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/v1/healthz: %d", base, resp.StatusCode)
		}
	})

	// The admin sees the account pages too; a township lead a warning
	// with its forms.
	for _, who := range []struct{ user, password string }{{app.AdminUsername, servertest.AdminPassword}, {"leadA", servertest.CityPassword}} {
		t.Run(who.user, func(t *testing.T) {
			b := newBrowser(t, srv.URL)
			resp, page := b.do("GET", "/console/login", nil, nil)
			if _, outside := linksOutside(page); resp.StatusCode != http.StatusOK || len(outside) > 0 {
				t.Fatalf("login page: %d, links outside %s: %q", resp.StatusCode, base, outside)
			}
			resp, _ = b.do("POST", "/console/login", url.Values{"username": {who.user}, "password": {who.password}}, nil)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != base+"/console/" {
				t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			var cookie *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == console.CookieName {
					cookie = c
				}
			}
			if cookie == nil || cookie.Path != base+"/console" {
				t.Fatalf("session cookie %+v, want Path %s/console", cookie, base)
			}
			pages := crawl(t, b, base+"/console/")
			// Pages no link leads to: an error page, a unit out of scope.
			crawl(t, b, base+"/console/warnings/00000000-0000-4000-8000-000000000000")
			crawl(t, b, base+"/console/?unit=9999")
			var warning string
			for p := range pages {
				if strings.HasPrefix(p, base+"/console/warnings/") {
					warning = p
				}
			}
			if warning == "" {
				t.Fatalf("no warning page among the %d pages opened", len(pages))
			}
			// A form posted from a warning's page answers with a redirect
			// under the base path, or an error page whose links stay in it.
			_, page = b.do("GET", strings.TrimPrefix(warning, base), nil, nil)
			resp, page = b.do("POST", strings.TrimPrefix(warning, base), url.Values{"csrf": {csrfOf(t, page)}, "action": {"no-such-action"}}, nil)
			if _, outside := linksOutside(page); resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), base+"/") || len(outside) > 0 {
				t.Errorf("POST %s: %d to %q, links outside: %q", warning, resp.StatusCode, resp.Header.Get("Location"), outside)
			}
		})
	}
}

// TestTemplates_LinksGoThroughPath reads the templates themselves: every
// address a page gives a browser is built by path (or is relative to the
// page, or a phone number), so a page no test renders cannot leave the
// base path either.
func TestTemplates_LinksGoThroughPath(t *testing.T) {
	files, err := filepath.Glob("templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkAttr.FindAllStringSubmatch(string(b), -1) {
			v := m[1]
			if strings.HasPrefix(v, "{{path ") || strings.HasPrefix(v, "?") || strings.HasPrefix(v, "{{tel ") {
				continue
			}
			t.Errorf("%s: %q is not built with path", f, m[0])
		}
	}
}
