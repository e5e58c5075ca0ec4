package console_test

import (
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// protocolWords are the codes and roles of the protocol, which a page
// must show as Chinese words, never as themselves.
var protocolWords = []string{
	// statuses
	syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned, syncproto.WarningInProgress,
	syncproto.WarningResolved, syncproto.WarningClosed,
	// op types and the log's own entries
	syncproto.OpCreated, syncproto.OpDispatched, syncproto.OpAssigned, syncproto.OpRecorded, syncproto.OpEscalated,
	syncproto.OpReviewed, store.EntryPhoto, store.EntryArchived, store.EntryRedacted,
	// error and rejection codes
	syncproto.CodeInvalidRequest, syncproto.CodeUnsupportedProtocol, syncproto.CodeUnauthorized, syncproto.CodeTokenExpired,
	syncproto.CodeDeviceRevoked, syncproto.CodeForbidden, syncproto.CodeNotFound, syncproto.CodePayloadTooLarge,
	syncproto.CodeOutOfOrder, syncproto.CodeCursorExpired, syncproto.CodeRateLimited, syncproto.CodeUpgradeRequired,
	syncproto.CodeUnavailable, syncproto.CodeTooManyDevices, syncproto.CodeInternal, syncproto.CodeInvalidState,
	syncproto.CodeSeqReused, syncproto.CodeWarningFull, syncproto.CodePhotoQuotaExceeded,
	// roles, results, decisions, outcomes, flags
	syncproto.RoleCenter, syncproto.RoleCounty, syncproto.RoleTownship, syncproto.RoleVillage,
	syncproto.StatusApplied, syncproto.StatusDuplicate, syncproto.StatusRejected,
	syncproto.DecisionApprove, syncproto.DecisionReturn,
	syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget, syncproto.OutcomeUnreachable,
	syncproto.OutcomeRefused, syncproto.FlagStaleAssignee, syncproto.FlagAfterClose, syncproto.FlagConflictingOutcomes,
	syncproto.FlagStaleReview, syncproto.FlagFutureTime,
	// the name fieldsyncd init gives the first administrator
	"Administrator",
}

var (
	englishWord = regexp.MustCompile(`(?i)(?:^|[^A-Za-z0-9_.])(` + quoteAll(protocolWords) + `)(?:$|[^A-Za-z0-9_])`)
	// The text a person sees: tags and their attributes, scripts and
	// styles go; title= tooltips stay, they are seen too.
	hiddenParts = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>`)
	titleAttr   = regexp.MustCompile(`title="([^"]*)"`)
	anyTag      = regexp.MustCompile(`(?s)<[^>]*>`)
)

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(q, "|")
}

// visibleText is what a person reads of a page.
func visibleText(page string) string {
	page = hiddenParts.ReplaceAllString(page, " ")
	var titles []string
	for _, m := range titleAttr.FindAllStringSubmatch(page, -1) {
		titles = append(titles, m[1])
	}
	return html.UnescapeString(anyTag.ReplaceAllString(page, " ") + " " + strings.Join(titles, " "))
}

// wantNoCodes fails when a page shows a protocol code in English.
func wantNoCodes(t *testing.T, what, page string) {
	t.Helper()
	if m := englishWord.FindStringSubmatch(visibleText(page)); m != nil {
		t.Errorf("%s shows %q", what, m[1])
	}
}

// getHTML asks for a page as a browser does.
func getHTML(b *browser, path string) (int, string) {
	b.t.Helper()
	resp, page := b.do("GET", path, nil, map[string]string{"Accept": "text/html"})
	return resp.StatusCode, page
}

// TestConsole_NoProtocolCodesOnAnyPage walks every page of the console as
// each role sees it, error pages included, after work that fills them
// (an assignment, an attempt, a refused approval, a feed with bad rows),
// and fails on any protocol code or role shown in English.
func TestConsole_NoProtocolCodesOnAnyPage(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, csrf := signedIn(t, srv, "leadA")
	_, list := lead.do("GET", "/console/warnings", nil, nil)
	id := linkTo(t, list, "测试C1") // a1's, the one cadre of village A1
	warning := "/console/warnings/" + id
	// An approval of unworked warning is refused (invalid_state), and the
	// history shows the refusal.
	lead.do("POST", warning, url.Values{"csrf": {csrf}, "action": {"approve"}}, nil)
	// An attempt from a phone, so the warning shows who recorded it.
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	recordAttempt(t, a1, id)

	center, centerCSRF := signedIn(t, srv, "center1")
	warned := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	feedPage := uploadFeed(t, center, centerCSRF, "bad.csv", "external_id,name,phone,unit,fraud_type,risk,warned_at,deadline\n"+
		",,,41,刷单返利,extreme,later,never\n"+
		"X2,某人,13800000009,"+servertest.UnitVillA1+",刷单返利,high,"+warned+",\n"+
		"X3,某人,13800000008,999999999999,刷单返利,high,"+warned+",\n")
	wantNoCodes(t, "the feed page after an import", feedPage)
	// Every problem of the bad row, and the store's own refusal, in Chinese.
	for _, want := range []string{"预警编号（external_id）不能为空", "姓名（name）不能为空", "单位代码（unit）应是", "风险等级（risk）应填",
		"预警时间（warned_at）不是可识别的时间", "处置期限（deadline）不是可识别的时间", "999999999999 不在您的辖区内"} {
		if !strings.Contains(feedPage, want) {
			t.Errorf("the feed page lacks %q", want)
		}
	}

	admin := newBrowser(t, srv.URL)
	if resp, _ := admin.do("POST", "/console/login", url.Values{"username": {app.AdminUsername}, "password": {servertest.AdminPassword}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", resp.StatusCode)
	}
	county, _ := signedIn(t, srv, "county1")
	pages := []string{"/console/", "/console/warnings", "/console/warnings?status=lost", "/console/warnings?unit=没有这个村",
		"/console/warnings?from=soon", "/console/flags", "/console/feed", "/console/admin", "/console/nothing-here",
		"/console/warnings/0190a3b2-0000-7000-8000-000000000000", "/console/warnings/not-an-id", warning}
	for name, b := range map[string]*browser{"leadA": lead, "county1": county, "center1": center, "admin": admin} {
		for _, path := range pages {
			_, page := getHTML(b, path)
			wantNoCodes(t, name+" "+path, page)
		}
		// A form whose token expired, and one from a signed-out page.
		resp, page := b.do("POST", warning, url.Values{"csrf": {"stale"}, "action": {"approve"}}, map[string]string{"Accept": "text/html"})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "表单已过期") || !strings.Contains(page, `href="`+warning+`"`) {
			t.Errorf("%s: an expired form answers %d without a way back", name, resp.StatusCode)
		}
		wantNoCodes(t, name+" expired form", page)
	}
	_, page := getHTML(newBrowser(t, srv.URL), "/console/login")
	wantNoCodes(t, "the login page", page)
}

// uploadFeed uploads a feed file through the console's form and returns
// the page that answers.
func uploadFeed(t *testing.T, b *browser, csrf, name, content string) string {
	t.Helper()
	var body strings.Builder
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", b.base+"/console/feed", strings.NewReader(body.String()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "text/html")
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page strings.Builder
	_, _ = io.Copy(&page, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", resp.StatusCode, page.String())
	}
	return page.String()
}

// recordAttempt pushes a dissuasion attempt on warning id from the cadre's
// device, as a phone does.
func recordAttempt(t *testing.T, cadre *servertest.Device, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cadre.Pull(ctx, syncproto.PullRequest{DeviceID: cadre.ID}); err != nil {
		t.Fatal(err)
	}
	reached := true
	resp, err := cadre.Push(ctx, syncproto.PushRequest{DeviceID: cadre.ID, Ops: []syncproto.Op{{
		ID: "0190a3b2-0000-7000-8000-0000000000a1", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: id, At: time.Now().UTC(),
		Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-0000000000a2", Method: syncproto.MethodVisit, Reached: &reached,
			Outcome: syncproto.OutcomeDissuaded},
	}}})
	if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("record an attempt: %+v %v", resp, err)
	}
}

// linkTo is the id of the warning a list page links by name.
func linkTo(t *testing.T, page, name string) string {
	t.Helper()
	for _, m := range warningLink.FindAllStringSubmatch(page, -1) {
		if m[2] == name {
			return m[1]
		}
	}
	t.Fatalf("the list has no link to %s", name)
	return ""
}
