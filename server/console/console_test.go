package console_test

import (
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so a test sees them.
type browser struct {
	t    testing.TB
	base string
	http *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func (b *browser) login(user string) *http.Response {
	b.t.Helper()
	resp, _ := b.do("POST", "/console/login", url.Values{"username": {user}, "password": {servertest.CityPassword}}, nil)
	return resp
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page")
	}
	return m[1]
}

func setup(t *testing.T, opts servertest.Options) *servertest.Server {
	srv := servertest.Start(t, opts)
	srv.LoadCity(t)
	warned := time.Now().Add(-time.Hour)
	srv.Import(t, "center1",
		servertest.FeedRow("C1", servertest.UnitVillA1, syncproto.RiskHigh, warned),
		servertest.FeedRow("C2", servertest.UnitVillA2, syncproto.RiskHigh, warned),
		servertest.FeedRow("C3", servertest.UnitVillB1, syncproto.RiskHigh, warned))
	return srv
}

func TestConsole_LoginDashboardLogout(t *testing.T) {
	srv := setup(t, servertest.Options{})
	b := newBrowser(t, srv.URL)

	resp, _ := b.do("GET", "/console/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("no session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.do("GET", "/console/login", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "<form") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("login page: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = b.do("GET", "/console/static/style.css", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	resp, page = b.do("POST", "/console/login", url.Values{"username": {"leadA"}, "password": {"wrong-password"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "用户名或密码错误") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp := b.login("a1"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a village cadre signs in to the console: %d", resp.StatusCode)
	}

	resp = b.login("leadA")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure || cookie.Path != "/console" {
		t.Fatalf("session cookie: %+v", cookie)
	}

	resp, page = b.do("GET", "/console/", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	for _, want := range []string{"西大街街道", "接收", "长青社区", "团结社区", "王镇甲"} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "和平社区") || strings.Contains(page, "东大街街道") {
		t.Error("dashboard shows another township")
	}
	if resp, _ := b.do("GET", "/console/?sort=rate", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("sorted dashboard: %d", resp.StatusCode)
	}

	// Forms need the session's CSRF token.
	if resp, _ := b.do("POST", "/console/logout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/console/logout", url.Values{"csrf": {"forged"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a forged CSRF token: %d", resp.StatusCode)
	}
	resp, _ = b.do("POST", "/console/logout", url.Values{"csrf": {csrfOf(t, page)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestConsole_SecureCookieBehindTLS(t *testing.T) {
	srv := setup(t, servertest.Options{})
	b := newBrowser(t, srv.URL)
	resp, _ := b.do("POST", "/console/login", url.Values{"username": {"center1"}, "password": {servertest.CityPassword}},
		map[string]string{"X-Forwarded-Proto": "https"})
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName && !c.Secure {
			t.Fatal("the session cookie behind TLS is not Secure")
		}
	}
}

// TestConsole_SessionEnds: the clock runs as well as jumps, so each jump
// leaves minutes of real time before a limit, however slow the machine.
func TestConsole_SessionEnds(t *testing.T) {
	clk := &fakeclock.Offset{}
	srv := setup(t, servertest.Options{Now: clk.Now, ConsoleIdle: 10 * time.Minute})
	t.Run("Idle", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.login("leadA")
		clk.Add(5 * time.Minute)
		if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("within the idle timeout: %d", resp.StatusCode)
		}
		clk.Add(11 * time.Minute)
		if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the idle timeout: %d", resp.StatusCode)
		}
	})
	t.Run("TokenRefreshed", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.login("leadA")
		for range 6 {
			clk.Add(6 * time.Minute) // past the 15-minute access token twice, never idle
			if resp, _ := b.do("GET", "/console/", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("an active session ended: %d", resp.StatusCode)
			}
		}
	})
}

var warningLink = regexp.MustCompile(`href="/console/warnings/([0-9a-f-]{36})">([^<]+)<`)

func TestConsole_WarningsAndDetail(t *testing.T) {
	srv := setup(t, servertest.Options{})
	a := newBrowser(t, srv.URL)
	a.login("leadA")
	resp, page := a.do("GET", "/console/warnings", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	links := map[string]string{}
	for _, m := range warningLink.FindAllStringSubmatch(page, -1) {
		links[m[2]] = m[1]
	}
	if len(links) != 2 || links["测试C1"] == "" || links["测试C2"] == "" {
		t.Fatalf("leadA lists %v, want C1 and C2", links)
	}
	// A search goes in a form body, never in the URL.
	page = search(t, a, csrfOf(t, page), "测试C2", url.Values{})
	if !strings.Contains(page, "测试C2") || strings.Contains(page, "测试C1") {
		t.Fatal("the search does not find 测试C2 alone")
	}
	if resp, _ := a.do("POST", "/console/warnings", url.Values{"q": {"测试C2"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("search without CSRF: %d", resp.StatusCode)
	}
	if resp, page := a.do("GET", "/console/warnings?status=lost", nil, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "「状态」") {
		t.Fatalf("bad filter: %d", resp.StatusCode)
	}
	resp, page = a.do("GET", "/console/warnings/"+links["测试C1"], nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "测试C1") || !strings.Contains(page, "接收预警") {
		t.Fatalf("detail: %d", resp.StatusCode)
	}
	// Another township's lead cannot open it.
	b := newBrowser(t, srv.URL)
	b.login("leadB")
	if resp, _ := b.do("GET", "/console/warnings/"+links["测试C1"], nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("leadB opens a township-A warning: %d", resp.StatusCode)
	}
	if _, page := b.do("GET", "/console/warnings", nil, nil); strings.Contains(page, "测试C1") || !strings.Contains(page, "测试C3") {
		t.Fatal("leadB's list is not township B's")
	}
}

func TestConsole_Actions(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	_, page := lead.do("GET", "/console/warnings", nil, nil)
	links := map[string]string{}
	for _, m := range warningLink.FindAllStringSubmatch(page, -1) {
		links[m[2]] = m[1]
	}
	c1, c2 := "/console/warnings/"+links["测试C1"], "/console/warnings/"+links["测试C2"]
	version := regexp.MustCompile(`name="base_version" value="(\d+)"`)
	cadre := regexp.MustCompile(`<option value="([0-9a-f-]{36})"[^>]*>陈村二`)
	act := func(path string, form url.Values) string {
		t.Helper()
		_, page := lead.do("GET", path, nil, nil)
		form.Set("csrf", csrfOf(t, page))
		if form.Get("base_version") == "" {
			form.Set("base_version", version.FindStringSubmatch(page)[1])
		}
		resp, _ := lead.do("POST", path, form, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("action %v: %d", form, resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query().Get("done")
	}

	_, page = lead.do("GET", c2, nil, nil)
	m := cadre.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the assignment picker lacks 陈村二")
	}
	if done := act(c2, url.Values{"action": {"assign"}, "assignee": {m[1]}}); done != "applied" {
		t.Fatalf("assign: %s", done)
	}
	if _, page := lead.do("GET", c2+"?done=applied", nil, nil); !strings.Contains(page, "已指派") || !strings.Contains(page, "操作已生效") {
		t.Fatal("the page does not show the assignment")
	}
	// Approving work nobody did is refused before it is pushed: the
	// history shows no review.
	if done := act(c2, url.Values{"action": {"approve"}}); done != "refused" {
		t.Fatalf("approving assigned work: %s", done)
	}
	if n := reviewsInHistory(t, srv, c2); n != 0 {
		t.Fatalf("the refused approval is in the history %d times", n)
	}
	if done := act(c2, url.Values{"action": {"escalate"}}); done != "invalid-body.reason" {
		t.Fatalf("escalation without a reason: %s", done)
	}

	// A cadre's record arrives after the lead opened the page: the
	// approval made on that stale page is applied and flagged.
	_, stale := lead.do("GET", c1, nil, nil)
	staleVersion := version.FindStringSubmatch(stale)[1]
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	reached := true
	if _, err := a1.Push(context.Background(), syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{{
		ID: "0190a3b2-0000-7000-8000-0000000000c1", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: links["测试C1"], At: time.Now().UTC(),
		Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-0000000000a1", Method: syncproto.MethodVisit, Reached: &reached, Outcome: syncproto.OutcomeDissuaded},
	}}}); err != nil {
		t.Fatal(err)
	}
	if done := act(c1, url.Values{"action": {"approve"}, "base_version": {staleVersion}}); done != "flagged" {
		t.Fatalf("approval on a stale page: %s", done)
	}
	if _, page := lead.do("GET", c1, nil, nil); !strings.Contains(page, "已办结") || !strings.Contains(page, "审核时还没有看到最新的劝阻记录") {
		t.Fatal("the stale approval is not closed and explained")
	}

	// The flag queue explains the open flag.
	if resp, page := lead.do("GET", "/console/flags", nil, nil); resp.StatusCode != 200 || !strings.Contains(page, "测试C1") || !strings.Contains(page, "审核时还没有看到最新的劝阻记录") {
		t.Fatalf("flag queue: %d", resp.StatusCode)
	}
	// The list opens on the unfinished work: C1 is closed now, so it
	// shows under 全部 only.
	if _, page := lead.do("GET", "/console/warnings", nil, nil); strings.Contains(page, "测试C1") || !strings.Contains(page, "测试C2") ||
		!strings.Contains(page, `<option value="unfinished" selected>未办结`) {
		t.Fatal("the list does not open on the unfinished warnings")
	}
	if _, page := lead.do("GET", "/console/warnings?status=", nil, nil); !strings.Contains(page, "测试C1") || !strings.Contains(page, `<option value="" selected>全部`) {
		t.Fatal("全部 does not show the closed warning")
	}
	// Exports: the list as CSV (filters by POST with CSRF), the feedback.
	_, page = lead.do("GET", "/console/warnings?status=", nil, nil)
	if resp, _ := lead.do("POST", "/console/export/warnings.csv", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("export without CSRF: %d", resp.StatusCode)
	}
	resp, csvText := lead.do("POST", "/console/export/warnings.csv", url.Values{"csrf": {csrfOf(t, page)}}, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(csvText, "\uFEFF预警编号") || !strings.Contains(csvText, "测试C1") || !strings.Contains(csvText, "测试C2") || strings.Contains(csvText, "测试C3") {
		t.Fatalf("list export: %d %q", resp.StatusCode, csvText)
	}
	resp, csvText = lead.do("GET", "/console/export/feedback.csv", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(csvText, "\uFEFF预警编号,状态") || !strings.Contains(csvText, "C1,已办结,劝阻成功") {
		t.Fatalf("feedback export: %d %q", resp.StatusCode, csvText)
	}
}

func TestConsole_FeedUpload(t *testing.T) {
	srv := setup(t, servertest.Options{})
	upload := func(b *browser, name, content string) (int, string) {
		t.Helper()
		_, page := b.do("GET", "/console/warnings", nil, nil)
		var body strings.Builder
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("csrf", csrfOf(t, page))
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write([]byte(content))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", b.base+"/console/feed", strings.NewReader(body.String()))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := b.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	warned := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	file := "external_id,name,phone,unit,fraud_type,risk,warned_at\n" +
		"U1,上传一,13800000001," + servertest.UnitVillA1 + ",刷单返利,high," + warned + "\n" +
		"U2,上传二,13800000002," + servertest.UnitVillB1 + ",冒充客服,低," + warned + "\n" +
		"U3,上传三,13800000003," + servertest.UnitVillB1 + ",冒充客服,extreme," + warned + "\n" +
		"C1,重复,13800000004," + servertest.UnitVillA1 + ",刷单返利,high," + warned + "\n"
	center := newBrowser(t, srv.URL)
	center.login("center1")
	status, page := upload(center, "feed.csv", file)
	if status != 200 || !strings.Contains(page, "新增 2 条，重复 1 条，有误 1 行") || !strings.Contains(page, "<td>3</td>") {
		t.Fatalf("upload: %d %s", status, page)
	}
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	if status, page := upload(lead, "feed.csv", file); status != http.StatusForbidden || !strings.Contains(page, "只有市反诈中心") {
		t.Fatalf("a lead uploads: %d", status)
	}
	if status, _ := upload(center, "feed.json", `{"warnings": [`); status != http.StatusBadRequest {
		t.Fatalf("broken JSON: %d", status)
	}
}

func TestConsole_Admin(t *testing.T) {
	srv := setup(t, servertest.Options{})
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	admin := newBrowser(t, srv.URL)
	resp, _ := admin.do("POST", "/console/login", url.Values{"username": {"admin"}, "password": {servertest.AdminPassword}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin login: %d", resp.StatusCode)
	}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		_, page := admin.do("GET", "/console/admin", nil, nil)
		form.Set("csrf", csrfOf(t, page))
		resp, _ := admin.do("POST", path, form, nil)
		return resp
	}
	if resp := post("/console/admin/users", url.Values{"username": {"newcadre"}, "name": {"新干部"}, "unit": {servertest.UnitVillA1}, "password": {"new-password-1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: %d", resp.StatusCode)
	}
	if _, page := admin.do("GET", "/console/admin", nil, nil); !strings.Contains(page, "newcadre") || !strings.Contains(page, "新干部") {
		t.Fatal("the new user is not listed")
	}
	if resp := post("/console/admin/users", url.Values{"username": {"newcadre"}, "name": {"新干部"}, "unit": {servertest.UnitVillA1}, "active": {"false"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable user: %d", resp.StatusCode)
	}
	if _, err := srv.LoginDevice("newcadre", "new-password-1", "0190a3b2-0000-7000-8000-00000000beef"); err == nil {
		t.Fatal("a disabled user signed in")
	}
	if resp := post("/console/admin/users", url.Values{"username": {"bad name!"}, "name": {"x"}, "unit": {servertest.UnitVillA1}, "password": {"new-password-1"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad username: %d", resp.StatusCode)
	}
	// The devices table says when each device last synced: a pull is
	// noted in memory and written by the next flush.
	if _, err := a1.Pull(context.Background(), syncproto.PullRequest{DeviceID: a1.ID}); err != nil {
		t.Fatal(err)
	}
	if err := srv.App.FlushSightings(context.Background()); err != nil {
		t.Fatal(err)
	}
	dev, _, err := srv.Store.Device(a1.ID)
	if err != nil || dev.LastSeen.IsZero() {
		t.Fatalf("a1's phone after a pull: %+v %v", dev, err)
	}
	if _, page := admin.do("GET", "/console/admin", nil, nil); !strings.Contains(page, "<th>最近同步</th>") ||
		!strings.Contains(page, `<td data-label="最近同步">`+dev.LastSeen.In(syncproto.Beijing).Format("2006-01-02 15:04")+"</td>") {
		t.Fatalf("the devices table does not show when a1's phone last synced (%v)", dev.LastSeen)
	}
	if resp := post("/console/admin/devices", url.Values{"device": {a1.ID}, "wipe": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	_, err = a1.Pull(context.Background(), syncproto.PullRequest{DeviceID: a1.ID})
	if pe := syncproto.AsError(err); pe == nil || pe.Code != syncproto.CodeDeviceRevoked || pe.Details["wipe"] != true {
		t.Fatalf("the revoked phone: %v", err)
	}
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	if resp, _ := lead.do("GET", "/console/admin", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a lead opens the admin page: %d", resp.StatusCode)
	}
}

// TestConsole_NoPersonalDataInLogsOrURLs: a lead's session (search, pages,
// an action) leaves no name, phone, address or password in the server's
// log, and no page links to a URL carrying them.
func TestConsole_NoPersonalDataInLogsOrURLs(t *testing.T) {
	var logs servertest.Logs
	srv := setup(t, servertest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	b := newBrowser(t, srv.URL)
	b.login("leadA")
	_, page := b.do("GET", "/console/warnings", nil, nil)
	results := search(t, b, csrfOf(t, page), "测试C1", url.Values{})
	m := warningLink.FindStringSubmatch(results)
	if m == nil {
		t.Fatal("search found nothing")
	}
	_, detail := b.do("GET", "/console/warnings/"+m[1], nil, nil)
	b.do("POST", "/console/warnings/"+m[1], url.Values{"csrf": {csrfOf(t, detail)}, "action": {"escalate"}, "reason": {"需要民警协助"}}, nil)
	for _, secret := range []string{"测试C1", "测试C2", "13800001234", "某村某组C1", servertest.CityPassword, "需要民警协助"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
		for _, href := range regexp.MustCompile(`(?:href|action)="([^"]*)"`).FindAllStringSubmatch(page+results+detail, -1) {
			// A tel: link is dialled by the phone, never sent to a server.
			if strings.HasPrefix(href[1], "tel:") {
				continue
			}
			if strings.Contains(href[1], secret) || strings.Contains(href[1], url.QueryEscape(secret)) {
				t.Errorf("a URL holds %q: %s", secret, href[1])
			}
		}
	}
	if !strings.Contains(logs.String(), `"route":"/console/warnings/:id"`) {
		t.Fatal("the console's requests are not logged at all")
	}
}

func TestConsole_PhotosAndFilters(t *testing.T) {
	srv := setup(t, servertest.Options{})
	ctx := context.Background()
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	page, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID})
	if err != nil || len(page.Changes) != 1 {
		t.Fatalf("a1's pull: %v", err)
	}
	photo, hash := servertest.PNG("现场照片")
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatal(err)
	}
	reached := true
	if _, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{{
		ID: "0190a3b2-0000-7000-8000-0000000000f1", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: page.Changes[0].ID, At: time.Now().UTC(),
		Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-0000000000f2", Method: syncproto.MethodVisit, Reached: &reached,
			Outcome: syncproto.OutcomeDissuaded, Photos: []string{hash}},
	}}}); err != nil {
		t.Fatal(err)
	}
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	if _, detail := lead.do("GET", "/console/warnings/"+page.Changes[0].ID, nil, nil); !strings.Contains(detail, `src="/console/photos/`+hash+`"`) {
		t.Fatal("the warning page does not show the photo")
	}
	if resp, body := lead.do("GET", "/console/photos/"+hash, nil, nil); resp.StatusCode != 200 || body != string(photo) {
		t.Fatalf("the lead's photo: %d", resp.StatusCode)
	}
	other := newBrowser(t, srv.URL)
	other.login("leadB")
	if resp, _ := other.do("GET", "/console/photos/"+hash, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another township's lead reads the photo: %d", resp.StatusCode)
	}
	_, filtered := lead.do("GET", "/console/warnings?unit="+servertest.UnitVillA2, nil, nil)
	if !strings.Contains(filtered, "测试C2") || strings.Contains(filtered, "测试C1") {
		t.Fatal("the unit filter does not filter")
	}
}

// search posts a free-text search with the list's filters and follows the
// answer's redirect, which must carry the filters and not the text; it
// returns the list page.
func search(t *testing.T, b *browser, csrf, text string, filters url.Values) string {
	t.Helper()
	form := url.Values{"csrf": {csrf}, "q": {text}}
	for k, v := range filters {
		form[k] = v
	}
	resp, _ := b.do("POST", "/console/warnings", form, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/warnings") || (text != "" && strings.Contains(loc, url.QueryEscape(text))) {
		t.Fatalf("search: %d to %q", resp.StatusCode, loc)
	}
	resp, page := b.do("GET", loc, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the list after a search: %d", resp.StatusCode)
	}
	return page
}
