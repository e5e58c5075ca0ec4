package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// demoFlags are fieldsyncd demo's settings (docs/CONFIGURATION.md).
type demoFlags struct {
	addr, keep, logLevel string
	days, perDay         int
	seed                 int64
	metricsOpen          bool
}

func newDemoFlags(stderr io.Writer) (*flag.FlagSet, *demoFlags) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &demoFlags{}
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address HOST:PORT; port 0 picks one")
	fs.IntVar(&f.days, "days", 30, "days of history, today included")
	fs.IntVar(&f.perDay, "warnings", 300, "warnings a day, on average")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the demo city's names and history")
	fs.StringVar(&f.keep, "data", "", "keep the demo store in this directory instead of a temporary one")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.BoolVar(&f.metricsOpen, "metrics-open", false, "serve GET /metrics, which has no token in the demo, on an address other machines reach")
	return fs, f
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newDemoFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.days < 1 || f.perDay < 1 {
		return fmt.Errorf("--days %d and --warnings %d must both be at least 1", f.days, f.perDay)
	}
	if !f.metricsOpen && !isLoopback(f.addr) {
		return fmt.Errorf("--addr %s is reachable from other machines, and the demo's GET /metrics has no token: "+
			"give --metrics-open to serve it to them on purpose", f.addr)
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	dir := f.keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fieldsync-demo-*"); err != nil {
			return fmt.Errorf("temporary store: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	adminPassword := randomPassword()
	tree := demo.City(f.seed)
	if err := seedDemo(ctx, dir, tree, adminPassword, f.days, f.perDay, f.seed); err != nil {
		return fmt.Errorf("load demo city: %w", err)
	}
	m := metrics.New(metrics.Options{})
	st, err := store.Open(dir, store.Options{OnCommit: m.ObserveCommit})
	if err != nil {
		return err
	}
	defer st.Close()
	return serve(ctx, st, serveParams{Addr: f.addr, HTTP: httpapi.Config{Logger: logger, Metrics: m}, Ready: func(url string) {
		printLogins(stdout, url, tree, adminPassword, f.keep)
	}}, stdout)
}

// seedDemo fills a new store in dir with the demo city and its history
// up to now (demo.History). It writes through a store of its own, whose
// clock follows the history and which skips fsync: the store is new and
// nobody depends on it until it is whole, so one fsync of the file at the
// end does, in a fraction of the time, what one per transaction would.
func seedDemo(ctx context.Context, dir string, tree *demo.Tree, adminPassword string, days, perDay int, seed int64) error {
	now := time.Now()
	events := demo.History(tree, now, days, perDay, seed)
	start := now
	if len(events) > 0 {
		start = events[0].At.Add(-2 * time.Hour)
	}
	clock := demo.NewClock(start)
	// The seeding makes a lot of short-lived garbage and keeps little:
	// collecting less often saves a quarter of its time.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	st, err := store.Open(dir, store.Options{Create: true, Now: clock.Now, NoSync: true})
	if err != nil {
		return err
	}
	err = app.Bootstrap(ctx, st, demo.CityCode, demo.CityName, adminPassword)
	if err == nil {
		err = demo.Seed(ctx, st, clock, tree, events)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncFile(filepath.Join(dir, store.DBFile))
}

// syncFile makes what was written to the file at path durable.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync the demo store: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync the demo store: %w", err)
	}
	return nil
}

// printLogins is the demo's banner: the console's address first, then a
// login per role, and where the store is (kept, the directory given by
// --data; else "", a temporary one deleted on exit).
func printLogins(w io.Writer, url string, tree *demo.Tree, adminPassword, kept string) {
	where := "the store is deleted on exit."
	if kept != "" {
		where = "the store is kept in " + kept + "."
	}
	township := tree.Townships()[0]
	village := ""
	for _, v := range tree.Villages() {
		if syncproto.ParentCode(v) == township {
			village = v
			break
		}
	}
	fmt.Fprintf(w, `
fieldsync demo (%d units, %d users)

  console    %s/console/
             open it in a browser; leads, the county and the center sign in there
  API        %s/v1/  (phones and the SDK; docs/PROTOCOL.md)

  role       username                    password
  admin      %-27s %s
  center     %-27s %s
  county     %-27s %s
  township   %-27s %s
  village    %-27s %s

Every county, township and village user follows the same pattern
(county-<code>, lead-<code>, cadre-<code>-1); %s
Try: curl %s/v1/healthz
`, len(tree.Units), len(tree.Users), url, url,
		app.AdminUsername, adminPassword,
		demo.CenterUsername, demo.CenterPassword,
		demo.CountyUsername(syncproto.ParentCode(township)), demo.CountyPassword,
		demo.LeadUsername(township), demo.TownshipPassword,
		demo.CadreUsername(village, 1), demo.VillagePassword,
		where, url)
}
