package console_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestConsole_BrowserFeedUpload: the center uploads a feed file from a
// real browser. The upload is read only after its CSRF token, which must
// come first in the form, and only from a page of the console's own
// origin: this is the browser the two checks were written for.
func TestConsole_BrowserFeedUpload(t *testing.T) {
	srv := setup(t, servertest.Options{})
	file := filepath.Join(t.TempDir(), "feed.csv")
	warned := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if err := os.WriteFile(file, []byte("external_id,name,phone,unit,fraud_type,risk,warned_at\n"+
		"B1,浏览器上传,13800000001,"+servertest.UnitVillA1+",刷单返利,high,"+warned+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := openChromium(t, srv.URL+"/console/login")
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("sign in",
		chromedp.WaitVisible(`input[name=username]`),
		chromedp.SendKeys(`input[name=username]`, "center1"),
		chromedp.SendKeys(`input[name=password]`, servertest.CityPassword),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`.cards`))
	do("upload",
		chromedp.Navigate(srv.URL+"/console/feed"),
		chromedp.WaitVisible(`input[name=file]`),
		chromedp.SetUploadFiles(`input[name=file]`, []string{file}),
		// The input is required: a form submitted before it holds the file
		// is stopped by the browser and never leaves the page.
		chromedp.Poll[chromedp.Void](`document.querySelector('input[name=file]').files.length === 1`, chromedp.WithPollingTimeout(0)),
		chromedp.Submit(`input[name=file]`),
		// The result, or the page's error: a refused upload fails the test
		// with what the page said instead of waiting for a result.
		chromedp.WaitVisible(`h2, p.error, main h1 + p`))
	result, err := chromedp.Run(steps, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(result, "新增 1 条") {
		t.Fatalf("the upload shows:\n%s", result)
	}
}
