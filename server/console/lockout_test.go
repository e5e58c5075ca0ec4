package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// The console signs in through the same lockout as the API, and says so in
// plain words rather than "wrong password" while it lasts.
func TestConsole_LoginLockout(t *testing.T) {
	clk := &fakeclock.Offset{}
	srv := setup(t, servertest.Options{Now: clk.Now})
	b := newBrowser(t, srv.URL)
	for i := 0; i < app.DefaultLockoutThreshold; i++ {
		resp, page := b.do("POST", "/console/login", url.Values{"username": {"leadA"}, "password": {"wrong-password"}}, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "用户名或密码错误") {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, page := b.do("POST", "/console/login", url.Values{"username": {"leadA"}, "password": {servertest.CityPassword}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "900" ||
		!strings.Contains(page, "登录失败次数过多，请 15 分钟后再试") {
		t.Fatalf("locked sign-in: %d, Retry-After %q, page without the lockout message", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Add(15 * time.Minute)
	if resp := b.login("leadA"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in after the lockout: %d", resp.StatusCode)
	}
}
