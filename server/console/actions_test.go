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

// warningPaths opens b's list and returns each warning's page by name.
func warningPaths(t *testing.T, b *browser, list string) map[string]string {
	t.Helper()
	_, page := b.do("GET", list, nil, nil)
	paths := map[string]string{}
	for _, m := range warningLink.FindAllStringSubmatch(page, -1) {
		paths[m[2]] = "/console/warnings/" + m[1]
	}
	return paths
}

// postAction sends one action form from the page at path as the page
// would, and returns where it leads: the done code.
func postAction(t *testing.T, b *browser, path string, form url.Values) string {
	t.Helper()
	_, page := b.do("GET", path, nil, nil)
	form.Set("csrf", csrfOf(t, page))
	form.Set("base_version", regexp.MustCompile(`name="base_version" value="(\d+)"`).FindStringSubmatch(page)[1])
	resp, _ := b.do("POST", path, form, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("action %v: %d", form, resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query().Get("done")
}

// forms lists the action forms a warning page offers, by action.
func forms(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<form method="post" class="action-(\w+)">`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// resolveByCadre records a conclusive attempt on id from a1's phone.
func resolveByCadre(t *testing.T, srv *servertest.Server, id string) {
	t.Helper()
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	reached := true
	if _, err := a1.Push(context.Background(), syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{{
		ID: "0190a3b2-0000-7000-8000-0000000001c1", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: id, At: time.Now().UTC(),
		Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-0000000001a1", Method: syncproto.MethodVisit, Reached: &reached, Outcome: syncproto.OutcomeDissuaded},
	}}}); err != nil {
		t.Fatal(err)
	}
}

// reviewsInHistory counts the reviews in the history of the warning at
// the console's path, as the API gives it to leadA.
func reviewsInHistory(t *testing.T, srv *servertest.Server, path string) int {
	t.Helper()
	lead := srv.Login(t, "leadA", servertest.CityPassword)
	var d struct {
		History []struct {
			Type string `json:"type"`
		} `json:"history"`
	}
	if err := lead.Do(context.Background(), http.MethodGet, "/v1/warnings/"+strings.TrimPrefix(path, "/console/warnings/"), nil, &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range d.History {
		if h.Type == syncproto.OpReviewed {
			n++
		}
	}
	if len(d.History) == 0 {
		t.Fatal("the warning has no history at all")
	}
	return n
}

// TestConsole_ActionFormsFollowState: a warning page offers the forms of
// the actions its state allows the reader, and no others; pickers start
// empty and are required.
func TestConsole_ActionFormsFollowState(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	paths := warningPaths(t, lead, "/console/warnings")

	_, page := lead.do("GET", paths["测试C2"], nil, nil)
	if got := strings.Join(forms(page), ","); got != "assign,dispatch,escalate" {
		t.Fatalf("a dispatched warning offers %s", got)
	}
	for _, name := range []string{"assignee", "unit"} {
		if !regexp.MustCompile(`<select name="` + name + `" required><option value="">请选择…</option>`).MatchString(page) {
			t.Fatalf("the %s picker has a default or is not required", name)
		}
	}

	resolveByCadre(t, srv, strings.TrimPrefix(paths["测试C1"], "/console/warnings/"))
	_, page = lead.do("GET", paths["测试C1"], nil, nil)
	if got := strings.Join(forms(page), ","); got != "approve,return,escalate" {
		t.Fatalf("a resolved warning offers %s", got)
	}
	if !regexp.MustCompile(`<textarea name="comment" rows="2" maxlength="2000" required>`).MatchString(page) {
		t.Fatal("the return's reason is not required")
	}
}

// TestConsole_ReturnNeedsReason: a return without a reason is refused in
// the error style and leaves no trace; with one it is applied and shown.
func TestConsole_ReturnNeedsReason(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	c1 := warningPaths(t, lead, "/console/warnings")["测试C1"]
	resolveByCadre(t, srv, strings.TrimPrefix(c1, "/console/warnings/"))

	if done := postAction(t, lead, c1, url.Values{"action": {"return"}, "comment": {"  "}}); done != "invalid-body.comment" {
		t.Fatalf("a return without a reason: %s", done)
	}
	_, page := lead.do("GET", c1+"?done=invalid-body.comment", nil, nil)
	if !strings.Contains(page, `class="error alert" role="alert">没有执行：退回重办必须填写审核意见`) || strings.Contains(page, `class="notice"`) {
		t.Fatal("the refusal is not shown as an error")
	}
	if n := reviewsInHistory(t, srv, c1); n != 0 {
		t.Fatalf("the refused return is in the history %d times", n)
	}
	if done := postAction(t, lead, c1, url.Values{"action": {"return"}, "comment": {"请上门核实本人"}}); done != "applied" {
		t.Fatalf("a return with a reason: %s", done)
	}
	if _, page := lead.do("GET", c1, nil, nil); !strings.Contains(page, "请上门核实本人") {
		t.Fatal("the return's reason is not on the page")
	}
	if n := reviewsInHistory(t, srv, c1); n != 1 {
		t.Fatalf("the return is in the history %d times", n)
	}
}

// TestConsole_EscalationAnswered: a township's request for help is in the
// county's queue, the county answers it on the warning page, and the
// answer shows there; the township cannot answer.
func TestConsole_EscalationAnswered(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead := newBrowser(t, srv.URL)
	lead.login("leadA")
	c1 := warningPaths(t, lead, "/console/warnings")["测试C1"]
	if done := postAction(t, lead, c1, url.Values{"action": {"escalate"}, "reason": {"家属阻拦，需民警上门"}}); done != "applied" {
		t.Fatalf("escalate: %s", done)
	}
	_, page := lead.do("GET", c1, nil, nil)
	if !strings.Contains(page, "家属阻拦，需民警上门") || !strings.Contains(page, "待上级答复") || strings.Contains(page, "action-answer") {
		t.Fatal("the township's page does not show the open request, or offers to answer it")
	}

	county := newBrowser(t, srv.URL)
	county.login("county1")
	_, nav := county.do("GET", "/console/warnings", nil, nil)
	if !strings.Contains(nav, `href="/console/warnings?escalated=1"`) {
		t.Fatal("the county's nav has no escalation queue")
	}
	queue := warningPaths(t, county, "/console/warnings?escalated=1")
	if len(queue) != 1 || queue["测试C1"] != c1 {
		t.Fatalf("the county's queue: %v", queue)
	}
	if _, list := county.do("GET", "/console/warnings?escalated=1", nil, nil); !strings.Contains(list, "求助待答复</span>") {
		t.Fatal("the queue's rows have no badge")
	}
	if done := postAction(t, county, c1, url.Values{"action": {"answer"}, "answer": {""}}); done != "invalid-body.answer" {
		t.Fatalf("an empty answer: %s", done)
	}
	if done := postAction(t, county, c1, url.Values{"action": {"answer"}, "answer": {"已联系派出所，今晚上门"}}); done != "applied" {
		t.Fatalf("answer: %s", done)
	}
	if _, page := lead.do("GET", c1, nil, nil); !strings.Contains(page, "已联系派出所，今晚上门") || !strings.Contains(page, "李县 答复于") {
		t.Fatal("the township does not see the answer and who gave it")
	}
	if queue := warningPaths(t, county, "/console/warnings?escalated=1"); len(queue) != 0 {
		t.Fatalf("an answered request is still in the queue: %v", queue)
	}
	// The answer form is gone with the open request.
	if _, page := county.do("GET", c1, nil, nil); strings.Contains(page, "action-answer") {
		t.Fatal("the county is offered to answer an answered request")
	}
}
