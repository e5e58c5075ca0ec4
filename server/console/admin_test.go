package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// adminBrowser is a browser signed in to the console as the root admin,
// and post sends a form of the accounts page with its CSRF token.
func adminBrowser(t *testing.T, srv *servertest.Server) (b *browser, post func(form url.Values) (*http.Response, string)) {
	t.Helper()
	b = newBrowser(t, srv.URL)
	resp, _ := b.do("POST", "/console/login", url.Values{"username": {app.AdminUsername}, "password": {servertest.AdminPassword}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin login: %d", resp.StatusCode)
	}
	return b, func(form url.Values) (*http.Response, string) {
		t.Helper()
		_, page := b.do("GET", "/console/admin", nil, nil)
		form.Set("csrf", csrfOf(t, page))
		return b.do("POST", "/console/admin/users", form, nil)
	}
}

// TestConsole_AdminChangesOwnPassword replays the lock-out: the root admin
// saves their own account with a new password. The accounts page then
// answered 403 and the account was no admin any more. It stays admin, and
// the page stays open.
func TestConsole_AdminChangesOwnPassword(t *testing.T) {
	srv := setup(t, servertest.Options{})
	b, post := adminBrowser(t, srv)
	resp, _ := post(url.Values{"username": {app.AdminUsername}, "name": {"Administrator"}, "unit": {servertest.UnitCity}, "password": {"new-admin-password-1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save own account: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/console/admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("accounts page after changing the password: %d", resp.StatusCode)
	}
	if u := srv.User(t, app.AdminUsername); !u.Admin || !u.Active {
		t.Fatalf("admin after changing its password: admin %v, active %v", u.Admin, u.Active)
	}
	if _, err := srv.LoginDevice(app.AdminUsername, "new-admin-password-1", "0190a3b2-0000-7000-8000-00000000c0de"); err != nil {
		t.Fatalf("sign in with the new password: %v", err)
	}
}

// TestConsole_AdminCannotDisableItself: the accounts page offers no
// disable button for one's own account, and the form posted by hand is
// refused with a message saying why, changing nothing.
func TestConsole_AdminCannotDisableItself(t *testing.T) {
	srv := setup(t, servertest.Options{})
	b, post := adminBrowser(t, srv)
	if _, page := b.do("GET", "/console/admin", nil, nil); strings.Contains(page, `name="username" value="admin"`) {
		t.Fatal("the accounts page offers the admin a button to disable itself")
	}
	seq := srv.LastSeq(t)
	resp, page := post(url.Values{"username": {app.AdminUsername}, "active": {"false"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "不能停用自己的账号") {
		t.Fatalf("disable itself: %d, page says why: %v", resp.StatusCode, strings.Contains(page, "不能停用自己的账号"))
	}
	if u := srv.User(t, app.AdminUsername); !u.Admin || !u.Active || srv.LastSeq(t) != seq {
		t.Fatalf("a refused change wrote: admin %v, active %v", u.Admin, u.Active)
	}
}

// TestConsole_DisableEnableKeepsAdmin: the disable and enable buttons
// change whether an account is enabled, and nothing else. They once made
// every account they touched a plain user.
func TestConsole_DisableEnableKeepsAdmin(t *testing.T) {
	srv := setup(t, servertest.Options{})
	api := srv.Admin(t)
	if _, err := api.UpsertUsers(context.Background(), []syncproto.UserInput{{Username: "admin2", Name: "第二管理员", Unit: servertest.UnitCity, Admin: new(true), Password: "admin2-password-1"}}); err != nil {
		t.Fatal(err)
	}
	b, post := adminBrowser(t, srv)
	if _, page := b.do("GET", "/console/admin", nil, nil); !strings.Contains(page, `name="username" value="admin2"`) {
		t.Fatal("no button for admin2")
	}
	for _, active := range []string{"false", "true"} {
		if resp, _ := post(url.Values{"username": {"admin2"}, "active": {active}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("active=%s: %d", active, resp.StatusCode)
		}
		u := srv.User(t, "admin2")
		if !u.Admin || u.Active != (active == "true") || u.Name != "第二管理员" || u.Unit != servertest.UnitCity {
			t.Fatalf("admin2 after active=%s: %+v", active, u)
		}
	}
}
