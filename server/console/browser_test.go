package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// artifacts is where the browser test leaves its screenshots.
func artifacts(t *testing.T) string {
	dir := os.Getenv("FIELDSYNC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromium finds the browser, or skips the test where there is none:
// .ci/run (or make test-deps) installs Debian's chromium.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on this machine: make test-deps installs Debian's chromium package")
	return ""
}

// openChromium starts a browser on start and returns the context of its
// steps, which fails them before the test binary's timeout would end it.
// The browser ends with the test.
func openChromium(t *testing.T, start string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1366, 768))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first call starts the browser and must not carry a timeout;
	// the steps after it do.
	if err := chromedp.Do(browser, chromedp.Navigate(start)); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	steps, cancelSteps := context.WithDeadline(browser, testwait.Deadline(t))
	t.Cleanup(cancelSteps)
	return steps
}

// TestConsole_Browser: a lead in a real browser finds the warning a cadre
// recorded offline and pushed, approves it, and the cadre's SDK then sees
// it closed.
func TestConsole_Browser(t *testing.T) {
	srv := setup(t, servertest.Options{})
	ctx := context.Background()

	// The cadre's phone: pulls, records with no signal, then syncs.
	key := make([]byte, 32)
	phone, err := clientsdk.Open(t.TempDir(), clientsdk.Options{ServerURL: srv.URL, Key: key, DeviceName: "test", Platform: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if _, err := phone.Login(ctx, "a1", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	list := phone.Warnings(clientsdk.Filter{})
	if len(list) != 1 {
		t.Fatalf("the cadre holds %d warnings", len(list))
	}
	target := list[0]
	if _, err := phone.RecordAttempt(target.ID, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Notes: "已当面劝阻"}); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	steps := openChromium(t, srv.URL+"/console/login")

	dir := artifacts(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(steps, chromedp.FullScreenshot(100)) // 100 is PNG; less is JPEG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(steps, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("login page", chromedp.WaitVisible(`input[name=username]`))
	shot("1-login")
	do("sign in",
		chromedp.SendKeys(`input[name=username]`, "leadA"),
		chromedp.SendKeys(`input[name=password]`, servertest.CityPassword),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`.cards`))
	shot("2-dashboard")
	do("list", chromedp.Navigate(srv.URL+"/console/warnings"), chromedp.WaitVisible(`table.list`))
	shot("3-warnings")
	do("open the warning", chromedp.Click(`a[href="/console/warnings/`+target.ID+`"]`), chromedp.WaitVisible(`.timeline`))
	shot("4-warning")
	do("approve", chromedp.Click(`button[value=approve]`), chromedp.WaitVisible(`.notice`))
	shot("5-approved")
	// The same pages on a phone's screen.
	do("phone size", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(`.cards`))
	shot("6-dashboard-phone")
	do("phone list", chromedp.Navigate(srv.URL+"/console/warnings"), chromedp.WaitVisible(`table.list`))
	shot("7-warnings-phone")
	do("desk size", chromedp.EmulateViewport(1366, 768), chromedp.Navigate(srv.URL+"/console/warnings/"+target.ID), chromedp.WaitVisible(`h1 .badge`))
	status, err := chromedp.Run(steps, chromedp.Text(`h1 .badge`))
	if err != nil {
		t.Fatal(err)
	}
	if status != "已办结" {
		t.Fatalf("after approving the page shows %q", status)
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if w, _ := phone.Warning(target.ID); w.Status != syncproto.WarningClosed {
		t.Fatalf("the cadre's phone sees %s after the lead approved", w.Status)
	}
}
