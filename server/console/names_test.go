package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// unitNamed is the name of a unit of the small city.
func unitNamed(t *testing.T, code string) string {
	t.Helper()
	for _, u := range servertest.CityUnits {
		if u.Code == code {
			return u.Name
		}
	}
	t.Fatalf("no unit %s in the city", code)
	return ""
}

// The list names units (the code on hover) and masks phones; the warning
// page shows the phone whole as a tel: link, the unit by name, who holds
// the warning, who recorded each attempt and who reviewed.
func TestConsole_NamesNotCodes(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, csrf := signedIn(t, srv, "leadA")
	_, list := lead.do("GET", "/console/warnings", nil, nil)
	village := unitNamed(t, servertest.UnitVillA1)
	if !strings.Contains(list, `title="`+servertest.UnitVillA1+`">`+village+`<`) {
		t.Errorf("the list does not name the unit %s", village)
	}
	if !strings.Contains(list, "138****1234") || strings.Contains(list, "13800001234") {
		t.Error("the list shows phones whole")
	}
	if !strings.Contains(list, `<option value="deadline" selected>`) {
		t.Error("the list is not sorted by deadline by default")
	}
	id := linkTo(t, list, "测试C1")
	recordAttempt(t, srv.Login(t, "a1", servertest.CityPassword), id)
	_, page := lead.do("GET", "/console/warnings/"+id, nil, nil)
	for _, want := range []string{`href="tel:13800001234">13800001234<`, ">" + village + "<", "当前负责人</dt><dd>刘村一", "记录人 刘村一"} {
		if !strings.Contains(page, want) {
			t.Errorf("the warning page lacks %q", want)
		}
	}
	lead.do("POST", "/console/warnings/"+id, url.Values{"csrf": {csrf}, "action": {"approve"}, "base_version": {version(t, page)}}, nil)
	if _, page := lead.do("GET", "/console/warnings/"+id, nil, nil); !strings.Contains(page, "审核人 王镇甲") {
		t.Error("the warning page does not say who reviewed")
	}
}

// The unit filter takes a unit's name; a name not in the user's scope is
// an error in Chinese naming the field.
func TestConsole_UnitFilterByName(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, _ := signedIn(t, srv, "leadA")
	_, page := lead.do("GET", "/console/warnings?unit="+url.QueryEscape(unitNamed(t, servertest.UnitVillA2)), nil, nil)
	if !strings.Contains(page, "测试C2") || strings.Contains(page, "测试C1") {
		t.Fatal("the filter by name does not filter")
	}
	for _, name := range []string{"没有这个村", unitNamed(t, servertest.UnitVillB1)} {
		resp, page := lead.do("GET", "/console/warnings?unit="+url.QueryEscape(name), nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "筛选条件「单位」有误") {
			t.Errorf("unit %s: %d", name, resp.StatusCode)
		}
	}
}

// The filters stay in the URL through a search; the searched text stays
// in the session, not the URL, and is kept for the next visit.
func TestConsole_FiltersInTheURL(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, csrf := signedIn(t, srv, "leadA")
	resp, _ := lead.do("POST", "/console/warnings", url.Values{"csrf": {csrf}, "q": {"测试C2"}, "risk": {"high"}, "overdue": {""}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/console/warnings?risk=high&status=" {
		t.Fatalf("search: %d to %q", resp.StatusCode, loc)
	}
	_, page := lead.do("GET", "/console/warnings?risk=high", nil, nil)
	if !strings.Contains(page, "测试C2") || strings.Contains(page, "测试C1") || !strings.Contains(page, `<option value="high" selected>`) {
		t.Fatal("the reloaded view lost its filter or its search")
	}
	page = search(t, lead, csrf, "", url.Values{})
	if !strings.Contains(page, "测试C1") {
		t.Fatal("clearing the search does not")
	}
}

// Only those who may import the feed see 导入预警 and its page.
func TestConsole_ImportOnlyForImporters(t *testing.T) {
	srv := setup(t, servertest.Options{})
	for user, may := range map[string]bool{"leadA": false, "county1": false, "center1": true} {
		b, _ := signedIn(t, srv, user)
		_, page := b.do("GET", "/console/", nil, nil)
		if strings.Contains(page, `href="/console/feed"`) != may {
			t.Errorf("%s sees 导入预警: %v", user, !may)
		}
		status, _ := getHTML(b, "/console/feed")
		if (status == http.StatusOK) != may {
			t.Errorf("%s opens the feed page: %d", user, status)
		}
	}
}

// People's exports read in Chinese: headers, words for codes, units by
// name, Beijing time and amounts in yuan, with a BOM for Excel.
func TestConsole_ExportsForPeople(t *testing.T) {
	srv := setup(t, servertest.Options{})
	ctx := context.Background()
	lead, csrf := signedIn(t, srv, "leadA")
	_, list := lead.do("GET", "/console/warnings", nil, nil)
	id := linkTo(t, list, "测试C1")
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	if _, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID}); err != nil {
		t.Fatal(err)
	}
	reached := true
	if _, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{{
		ID: "0190a3b2-0000-7000-8000-0000000000b1", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: id, At: time.Now().UTC(),
		Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-0000000000b2", Method: syncproto.MethodPhone, Reached: &reached,
			Outcome: syncproto.OutcomeAlreadyDefrauded, LossFen: 123456789},
	}}}); err != nil {
		t.Fatal(err)
	}
	village := unitNamed(t, servertest.UnitVillA1)
	resp, text := lead.do("POST", "/console/export/warnings.csv", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(text, "\uFEFF预警编号,姓名,电话") || !strings.Contains(text, village+","+servertest.UnitVillA1) {
		t.Fatalf("list export: %d %q", resp.StatusCode, text)
	}
	resp, text = lead.do("GET", "/console/export/feedback.csv", nil, nil)
	recs := servertest.GuardedCSV(t, strings.TrimPrefix(text, "\uFEFF"))
	if resp.StatusCode != 200 || !strings.HasPrefix(text, "\uFEFF") || len(recs) < 2 || recs[0][4] != "被骗金额（元）" {
		t.Fatalf("feedback export: %d %q", resp.StatusCode, text)
	}
	for _, rec := range recs[1:] {
		if rec[0] != "C1" {
			continue
		}
		if rec[2] != "已被骗" || rec[4] != "1,234,567.89" || rec[5] != village || !beijingMinute(rec[9]) {
			t.Fatalf("C1's feedback row: %q", rec)
		}
		return
	}
	t.Fatal("no feedback row for C1")
}

// beijingMinute reports whether s is a time written as Beijing's clock
// shows it now (give or take the test's minute).
func beijingMinute(s string) bool {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, syncproto.Beijing)
	return err == nil && time.Since(t) < 10*time.Minute && time.Since(t) > -time.Minute
}

// A refusal is a page inside the layout, with a way back, for a browser;
// the protocol's error for anything else.
func TestConsole_ErrorPages(t *testing.T) {
	srv := setup(t, servertest.Options{})
	leadB, _ := signedIn(t, srv, "leadB")
	lead, _ := signedIn(t, srv, "leadA")
	_, list := lead.do("GET", "/console/warnings", nil, nil)
	theirs := "/console/warnings/" + linkTo(t, list, "测试C1")
	for path, status := range map[string]int{"/console/nothing-here": 404, theirs: 404} {
		got, page := getHTML(leadB, path)
		if got != status || !strings.Contains(page, `<nav>`) || !strings.Contains(page, `class="button" href="`) || !strings.Contains(page, "</html>") {
			t.Errorf("%s: %d, not a page of the console", path, got)
		}
		resp, body := leadB.do("GET", path, nil, nil)
		if resp.StatusCode != status || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s without text/html: %d %q", path, resp.StatusCode, body)
		}
	}
}

var baseVersion = regexp.MustCompile(`name="base_version" value="(\d+)"`)

// version is the base_version a warning page's forms carry.
func version(t *testing.T, page string) string {
	t.Helper()
	m := baseVersion.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the warning page has no base_version")
	}
	return m[1]
}
