package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/internal/testwait"
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
