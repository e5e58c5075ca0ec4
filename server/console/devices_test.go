package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// Each console sign-in is a device of its user, so it counts toward the
// server's cap on devices per user. Past the cap the console says so in
// plain words; a browser that signs out makes room, and so does one left
// idle: its session is ended in the store as well, not only forgotten.
func TestConsole_TooManyDevices(t *testing.T) {
	clk := &fakeclock.Offset{}
	srv := setup(t, servertest.Options{Now: clk.Now, ConsoleIdle: 10 * time.Minute, MaxDevicesPerUser: 2})
	first, second, third := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	for _, b := range []*browser{first, second} {
		if resp := b.login("leadA"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	resp, page := third.do("POST", "/console/login", url.Values{"username": {"leadA"}, "password": {servertest.CityPassword}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "此账号已在 2 台设备上登录，已达上限。请在不再使用的设备上退出登录，或请管理员停用该设备，然后再登录。") {
		t.Fatalf("sign-in past the cap: %d, page without the explanation", resp.StatusCode)
	}
	if resp, _ := third.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the refused browser has a session: %d", resp.StatusCode)
	}

	_, page = first.do("GET", "/console/", nil, nil)
	if resp, _ := first.do("POST", "/console/logout", url.Values{"csrf": {csrfOf(t, page)}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp := third.login("leadA"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in after another browser signed out: %d", resp.StatusCode)
	}

	// Both sessions go idle; a fourth browser finds room.
	clk.Add(11 * time.Minute)
	if resp := newBrowser(t, srv.URL).login("leadA"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in after the other sessions went idle: %d", resp.StatusCode)
	}
	if resp := newBrowser(t, srv.URL).login("leadA"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign-in after the other sessions went idle: %d", resp.StatusCode)
	}
}
