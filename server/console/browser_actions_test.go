package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestConsole_BrowserReturnAndAnswer: in a real browser the lead sees
// only the forms the resolved warning allows, cannot send a return
// without a reason, returns it with one, and the reason reaches the
// cadre's phone; the county opens its queue of requests for help and
// answers, and the answer reaches the phone too.
func TestConsole_BrowserReturnAndAnswer(t *testing.T) {
	srv := setup(t, servertest.Options{})
	ctx := context.Background()
	phone, err := clientsdk.Open(t.TempDir(), clientsdk.Options{ServerURL: srv.URL, Key: make([]byte, 32), DeviceName: "test", Platform: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if _, err := phone.Login(ctx, "a1", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if _, err := phone.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	target := phone.Warnings(clientsdk.Filter{})[0]
	if _, err := phone.RecordAttempt(target.ID, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded}); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Escalate(target.ID, "家属阻拦，需民警上门"); err != nil {
		t.Fatal(err)
	}
	sync()

	steps := openChromium(t, srv.URL+"/console/login")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	signIn := func(user string) {
		t.Helper()
		do("sign in "+user, chromedp.WaitVisible(`input[name=username]`),
			chromedp.SendKeys(`input[name=username]`, user),
			chromedp.SendKeys(`input[name=password]`, servertest.CityPassword),
			chromedp.Submit(`input[name=password]`),
			chromedp.WaitVisible(`.cards`))
	}
	page := srv.URL + "/console/warnings/" + target.ID

	signIn("leadA")
	do("open the warning", chromedp.Navigate(page), chromedp.WaitVisible(`form.action-return`))
	forms, err := chromedp.Run(steps, chromedp.Evaluate[string](
		`[...document.querySelectorAll('form[class^=action-]')].map(f => f.className).join(',')`))
	if err != nil {
		t.Fatal(err)
	}
	if forms != "action-approve,action-return,action-escalate" {
		t.Fatalf("the resolved warning offers %s", forms)
	}
	missing, err := chromedp.Run(steps, chromedp.Evaluate[bool](
		`document.querySelector('form.action-return textarea').validity.valueMissing && !document.querySelector('form.action-return').checkValidity()`))
	if err != nil || !missing {
		t.Fatalf("the browser would send a return without a reason (%v)", err)
	}
	do("return with a reason",
		chromedp.SendKeys(`form.action-return textarea`, "请补充现场照片"),
		chromedp.Click(`button[value=return]`),
		chromedp.WaitVisible(`.notice`))
	sync()
	if w, _ := phone.Warning(target.ID); w.Status != syncproto.WarningAssigned {
		t.Fatalf("the cadre's phone sees %s after the return", w.Status)
	} else if r, ok := w.LastReturn(); !ok || r.Comment != "请补充现场照片" || r.ByName != "王镇甲" {
		t.Fatalf("the cadre's phone sees the return %+v", r)
	}

	do("sign out", chromedp.Click(`form.logout button`), chromedp.WaitVisible(`input[name=username]`))
	signIn("county1")
	do("the county's queue", chromedp.Click(`a[href="/console/warnings?escalated=1"]`), chromedp.WaitVisible(`table.list`))
	do("open the request", chromedp.Click(`a[href="/console/warnings/`+target.ID+`"]`), chromedp.WaitVisible(`form.action-answer`))
	text, err := chromedp.Run(steps, chromedp.Text(`.escalations`))
	if err != nil || !strings.Contains(text, "家属阻拦，需民警上门") || !strings.Contains(text, "刘村一") {
		t.Fatalf("the request on the county's page: %q (%v)", text, err)
	}
	do("answer",
		chromedp.SendKeys(`form.action-answer textarea`, "已联系派出所，今晚上门"),
		chromedp.Click(`button[value=answer]`),
		chromedp.WaitVisible(`.notice`))
	sync()
	w, _ := phone.Warning(target.ID)
	if e, ok := w.LastEscalation(); !ok || e.Answer != "已联系派出所，今晚上门" || e.AnsweredByName != "李县" || w.Escalated {
		t.Fatalf("the cadre's phone sees escalated %v, %+v", w.Escalated, e)
	}
}
