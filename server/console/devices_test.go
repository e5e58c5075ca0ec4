package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// consoleDevices counts the console sessions, and the phones, the store
// keeps for a user.
func consoleDevices(t *testing.T, srv *servertest.Server, username string) (consoles, phones int) {
	t.Helper()
	devices, err := srv.Store.DevicesOf(map[string]bool{srv.User(t, username).ID: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devices {
		if d.Console {
			consoles++
		} else {
			phones++
		}
	}
	return consoles, phones
}

// cookie is the browser's session cookie.
func (b *browser) cookie() string {
	u, _ := url.Parse(b.base + "/console/")
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == console.CookieName {
			return c.Value
		}
	}
	return ""
}

// logout signs the browser out with the form of its page.
func (b *browser) logout(t *testing.T) {
	t.Helper()
	_, page := b.do("GET", "/console/", nil, nil)
	if resp, _ := b.do("POST", "/console/logout", url.Values{"csrf": {csrfOf(t, page)}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
}

// A console sign-in is a session, not a phone: 25 sign-ins, each with an
// action (an op of the session), and sign-outs leave no console session in
// the store, and the phone cap is untouched by them.
func TestConsole_SignInsAreNotDevices(t *testing.T) {
	srv := setup(t, servertest.Options{MaxDevicesPerUser: 2})
	srv.Login(t, "leadA", servertest.CityPassword) // a phone
	for i := range 25 {
		b := newBrowser(t, srv.URL)
		if resp := b.login("leadA"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d", i+1, resp.StatusCode)
		}
		_, page := b.do("GET", "/console/warnings", nil, nil)
		m := warningLink.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("leadA lists no warning")
		}
		resp, _ := b.do("POST", "/console/warnings/"+m[1], url.Values{"csrf": {csrfOf(t, page)}, "action": {"escalate"}, "reason": {"人手不足"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("action of sign-in %d: %d", i+1, resp.StatusCode)
		}
		if consoles, _ := consoleDevices(t, srv, "leadA"); consoles != 1 {
			t.Fatalf("signed in: %d console sessions stored, want 1", consoles)
		}
		b.logout(t)
	}
	if consoles, phones := consoleDevices(t, srv, "leadA"); consoles != 0 || phones != 1 {
		t.Fatalf("after 25 sign-ins and sign-outs: %d console sessions, %d phones; want 0 and 1", consoles, phones)
	}
	// Console sessions signed in do not take a phone's place either.
	for range 3 {
		newBrowser(t, srv.URL).login("leadA")
	}
	srv.Login(t, "leadA", servertest.CityPassword)
	if _, err := srv.LoginDevice("leadA", servertest.CityPassword, uuid.NewString()); syncproto.ErrorCode(err) != syncproto.CodeTooManyDevices {
		t.Fatalf("a third phone past the cap of 2: %v, want too_many_devices", err)
	}
}

// Sign-out ends the session at once: its cookie, its access token and its
// refresh token are refused.
func TestConsole_SignOutEndsSession(t *testing.T) {
	srv := setup(t, servertest.Options{})
	b := newBrowser(t, srv.URL)
	b.login("leadA")
	cookie := b.cookie()
	deviceID, access, refresh, ok := srv.Console.SessionTokens(cookie)
	if !ok {
		t.Fatal("no session after the sign-in")
	}
	b.logout(t)
	if _, _, _, ok := srv.Console.SessionTokens(cookie); ok {
		t.Fatal("the session is still held after sign-out")
	}
	replay := newBrowser(t, srv.URL)
	u, _ := url.Parse(srv.URL + "/console/")
	replay.http.Jar.SetCookies(u, []*http.Cookie{{Name: console.CookieName, Value: cookie, Path: "/console"}})
	if resp, _ := replay.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("the signed-out cookie: %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := srv.App.Authenticate(access); err == nil {
		t.Fatal("the signed-out session's access token is accepted")
	}
	_, err := srv.App.Refresh(context.Background(), &syncproto.RefreshRequest{RefreshToken: refresh, DeviceID: deviceID})
	if syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("the signed-out session's refresh token: %v, want unauthorized", err)
	}
}

// A session ends when unused for the idle time, also in the store (its
// refresh token is refused even if the browser never comes back), and at
// the end of its lifetime however busy it is.
func TestConsole_SessionLimits(t *testing.T) {
	clk := &fakeclock.Offset{}
	srv := setup(t, servertest.Options{Now: clk.Now, ConsoleIdle: 2 * time.Hour, ConsoleLifetime: 5 * time.Hour})

	t.Run("IdleInStore", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.login("leadA")
		deviceID, _, refresh, _ := srv.Console.SessionTokens(b.cookie())
		clk.Add(3 * time.Hour)
		_, err := srv.App.Refresh(context.Background(), &syncproto.RefreshRequest{RefreshToken: refresh, DeviceID: deviceID})
		if syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
			t.Fatalf("refresh of an idle session: %v, want unauthorized", err)
		}
		if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("an idle session's page: %d", resp.StatusCode)
		}
		if consoles, _ := consoleDevices(t, srv, "leadA"); consoles != 0 {
			t.Fatalf("%d console sessions stored after the idle one ended", consoles)
		}
	})
	t.Run("Lifetime", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.login("leadA")
		for hour := 1; hour < 5; hour++ {
			clk.Add(time.Hour)
			if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("a busy session after %d hours: %d", hour, resp.StatusCode)
			}
		}
		clk.Add(time.Hour)
		if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a busy session past its lifetime: %d", resp.StatusCode)
		}
	})
}

// A user keeps at most 20 console sessions: the 21st sign-in is not
// refused, it ends the oldest.
func TestConsole_SessionCap(t *testing.T) {
	clk := &fakeclock.Offset{}
	srv := setup(t, servertest.Options{Now: clk.Now})
	browsers := make([]*browser, 21)
	for i := range browsers {
		clk.Add(time.Second) // an order of sign-ins the store can tell
		browsers[i] = newBrowser(t, srv.URL)
		if resp := browsers[i].login("leadA"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d", i+1, resp.StatusCode)
		}
	}
	if consoles, _ := consoleDevices(t, srv, "leadA"); consoles != 20 {
		t.Fatalf("%d console sessions stored, want 20", consoles)
	}
	if resp, _ := browsers[0].do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the oldest session after the 21st sign-in: %d", resp.StatusCode)
	}
	for i, b := range browsers[1:] {
		if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("session %d: %d", i+2, resp.StatusCode)
		}
	}
}

// A restart signs every browser out, and leaves nothing of their sessions
// in the store.
func TestConsole_RestartEndsSessions(t *testing.T) {
	dir := t.TempDir()
	srv := setup(t, servertest.Options{Dir: dir})
	newBrowser(t, srv.URL).login("leadA")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = servertest.Start(t, servertest.Options{Dir: dir})
	if consoles, _ := consoleDevices(t, srv, "leadA"); consoles != 0 {
		t.Fatalf("%d console sessions stored after a restart", consoles)
	}
}

// The village cadre's tool is the phone: the console refuses the sign-in
// and stores nothing of it.
func TestConsole_VillageRefused(t *testing.T) {
	srv := setup(t, servertest.Options{})
	resp, page := newBrowser(t, srv.URL).do("POST", "/console/login", url.Values{"username": {"a1"}, "password": {servertest.CityPassword}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "村干部请使用手机应用") {
		t.Fatalf("a cadre's sign-in: %d", resp.StatusCode)
	}
	if consoles, phones := consoleDevices(t, srv, "a1"); consoles+phones != 0 {
		t.Fatalf("the refused sign-in left %d devices", consoles+phones)
	}
}
