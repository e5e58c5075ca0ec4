// Command screenshots photographs the console as its users see it: it
// starts `fieldsyncd demo` (the same server and demo city as make demo) as
// a child process, signs in as the center, a county, a township lead and
// the administrator in headless Chromium, and saves each one's dashboard at
// desk (1366 px) and phone (390 px) width as PNG files, for people to look
// at. make screenshots runs it; nothing checks the pictures.
//
//	go run ./examples/screenshots -fieldsyncd bin/fieldsyncd -out screenshots
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

func main() { cli.Main("screenshots", cli.Command(parseFlags, photograph)) }

type config struct {
	fieldsyncd string
	out        string
	chromium   string
	seed       int64
	timeout    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("screenshots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.fieldsyncd, "fieldsyncd", "bin/fieldsyncd", "the fieldsyncd binary to run the demo with (make build makes it)")
	fs.StringVar(&c.out, "out", "screenshots", "folder the PNG files are written to (created; not committed)")
	fs.StringVar(&c.chromium, "chromium", "", "the browser (default: chromium, chromium-browser or google-chrome on PATH)")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the demo city; must be the demo's, which is 1 unless changed there too")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up after this long")
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	if c.chromium == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				c.chromium = p
				break
			}
		}
		if c.chromium == "" {
			return nil, errors.New("no chromium on PATH: install Debian's chromium package (make test-deps) or give -chromium")
		}
	}
	return c, nil
}

// viewer is one person signing in to the console, and the pages photographed.
type viewer struct {
	name, username, password string
	pages                    []string
}

func viewers(seed int64) []viewer {
	tree := demo.City(seed)
	township := tree.Townships()[0]
	county := syncproto.ParentCode(township)
	return []viewer{
		{"center", demo.CenterUsername, demo.CenterPassword, []string{"/console/", "/console/wall"}},
		{"county", demo.CountyUsername(county), demo.CountyPassword, []string{"/console/"}},
		{"township", demo.LeadUsername(township), demo.TownshipPassword, []string{"/console/", "/console/warnings"}},
	}
}

// widths are the screens photographed: a desk's and a phone's.
var widths = []struct {
	name          string
	width, height int64
}{{"1366", 1366, 768}, {"390", 390, 844}}

func photograph(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	base, stop, err := startDemo(ctx, c.fieldsyncd, stderr)
	if err != nil {
		return err
	}
	defer stop()
	for _, v := range viewers(c.seed) {
		if err := c.shoot(ctx, base, v, stdout); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	return nil
}

// startDemo runs `fieldsyncd demo` on a free loopback port and returns its
// address once it prints it; stop ends it and waits for it.
func startDemo(ctx context.Context, bin string, stderr io.Writer) (base string, stop func(), err error) {
	cmd := exec.CommandContext(ctx, bin, "demo", "--addr", "127.0.0.1:0")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s demo: %w", bin, err)
	}
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	console := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/console/`)
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if m := console.FindStringSubmatch(lines.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return m[1], stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("%s demo ended before it printed the console's address", bin)
}

// shoot signs v in, in a browser of its own (its own cookies), and saves
// each page at each width.
func (c *config) shoot(ctx context.Context, base string, v viewer, stdout io.Writer) error {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(c.chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1366, 768))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	err := chromedp.Do(browser,
		chromedp.Navigate(base+"/console/login"),
		chromedp.WaitVisible(`input[name=username]`),
		chromedp.SendKeys(`input[name=username]`, v.username),
		chromedp.SendKeys(`input[name=password]`, v.password),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitNotPresent(`input[name=password]`))
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	for _, w := range widths {
		for i, page := range v.pages {
			err := chromedp.Do(browser,
				chromedp.EmulateViewport(w.width, w.height),
				chromedp.Navigate(base+page),
				chromedp.WaitReady(`body`))
			if err != nil {
				return fmt.Errorf("%s at %s px: %w", page, w.name, err)
			}
			png, err := chromedp.Run(browser, chromedp.FullScreenshot(100)) // 100 is PNG
			if err != nil {
				return fmt.Errorf("%s at %s px: %w", page, w.name, err)
			}
			file := filepath.Join(c.out, fmt.Sprintf("%s-%d-%s.png", v.name, i+1, w.name))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				return err
			}
			fmt.Fprintln(stdout, file)
		}
	}
	return nil
}
