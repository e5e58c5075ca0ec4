// Command scale measures the server's memory where DESIGN.md sets its
// target: a store of 1,000,000 warnings and 1,000 devices, the server
// alone in its process.
//
// It builds the store in this process (internal/benchcity, the store
// BenchmarkQueriesAt1M queries: the demo city, 30 days of feeds, attempts
// and approvals, fsync off while loading), then adds cadres until the
// city has -devices devices, several in every village. With -data DIR it
// keeps the store there and, run again, reuses it. Then it builds
// fieldsyncd, serves the store from a child process (fsync on, 127.0.0.1,
// request limits off) and drives the devices against it with the SDK's
// remote client, phase by phase:
//
//   - started: the server open on the store, nobody signed in;
//   - sign-in: every device signs in;
//   - initial sync: every device pulls its scope to the end,
//     -sync-conc at a time;
//   - push: each township lead gives every extra cadre of its villages
//     -assign of the first cadre's open warnings; every cadre pulls them,
//     then pushes -batches batches of 20 attempts, each followed by a pull
//     to the end, all cadres at once;
//   - held pulls: every device holds a long-poll pull (wait) at once, as
//     idle phones do;
//   - idle: nobody asks anything for -idle.
//
// Through each phase it samples the child's /proc/PID/status and prints a
// table: RssAnon at the phase's end and its peak during the phase, RssFile,
// VmRSS and VmHWM, the store file's size, and the Go heap the server's
// /metrics reports. The server is a separate process, so nothing of this
// program (its clients, its decoded pages) is in the figures.
//
//	go run ./examples/scale                          # 1,000,000 warnings, 1,000 devices
//	go run ./examples/scale -warnings 100000         # smaller, minutes less
//	go run ./examples/scale -data /var/tmp/scale1m   # keep the store; run again to reuse it
//	go run ./examples/scale -child-env GOGC=50       # the server under another GC setting
//
// It never exits non-zero because the target was missed: it reports figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
	"github.com/fieldsync/fieldsync/examples/internal/machine"
)

func main() { cli.Main("scale", cli.Command(parseFlags, run)) }

// config is the command line.
type config struct {
	warnings, devices int
	data              string // kept store directory; "" for a temporary one
	fieldsyncd        string // a built binary; "" builds one
	syncConc          int    // devices in their initial sync at once
	assign            int    // warnings a lead gives each extra cadre
	batches           int    // batches of attempts each cadre pushes
	hold              time.Duration
	idle              time.Duration
	sample            time.Duration
	childEnv          []string
}

// targetAnon is DESIGN.md's target for the server's anonymous memory.
const targetAnon = 200 << 20

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.warnings, "warnings", 1_000_000, "warnings in the store")
	fs.IntVar(&c.devices, "devices", 1000, "devices: the 22 township leads, then cadres spread over the villages")
	fs.StringVar(&c.data, "data", "", "directory to build the store in and keep it, or to reuse it from when it holds one built by this program")
	fs.StringVar(&c.fieldsyncd, "fieldsyncd", "", "the fieldsyncd binary to run (default: go build it)")
	fs.IntVar(&c.syncConc, "sync-conc", 50, "devices in their initial sync at once")
	fs.IntVar(&c.assign, "assign", 20, "warnings a township lead assigns to each extra cadre of a village")
	fs.IntVar(&c.batches, "batches", 3, "batches of 20 attempts each cadre pushes, each followed by a pull")
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "how long every device's long-poll pull is held at once")
	fs.DurationVar(&c.idle, "idle", 10*time.Second, "how long the server is left idle at the end")
	fs.DurationVar(&c.sample, "sample", 100*time.Millisecond, "how often /proc/PID/status of the server is read")
	var env string
	fs.StringVar(&env, "child-env", "", "comma-separated NAME=VALUE added to the server's environment (GOGC=50,GOMEMLIMIT=150MiB, GODEBUG=gctrace=1)")
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	if c.warnings < 1000 || c.devices < 200 || c.syncConc < 1 || c.batches < 0 || c.assign < 0 {
		return nil, fmt.Errorf("-warnings at least 1000, -devices at least 200 (the city's leads and first cadres), -sync-conc at least 1")
	}
	for kv := range strings.SplitSeq(env, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("-child-env: %q is not NAME=VALUE", kv)
		}
		c.childEnv = append(c.childEnv, kv)
	}
	return c, nil
}

func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	dir := cfg.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "scale-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	built, err := buildOrReuse(ctx, cfg, dir, stderr)
	if err != nil {
		return err
	}
	storeDir := filepath.Join(dir, "store")

	bin := cfg.fieldsyncd
	if bin == "" {
		bin = filepath.Join(dir, "fieldsyncd")
		fmt.Fprintln(stderr, "scale: building fieldsyncd ...")
		if err := buildFieldsyncd(ctx, bin); err != nil {
			return err
		}
	}
	srv, err := startServer(ctx, bin, storeDir, cfg.childEnv)
	if err != nil {
		return err
	}
	defer srv.stop(stderr)
	fmt.Fprintf(stderr, "scale: fieldsyncd pid %d serves %s at %s\n", srv.pid(), storeDir, srv.url)

	m := &meter{pid: srv.pid(), metricsURL: srv.url + "/metrics", storeFile: srv.storeFile, every: cfg.sample}
	rows, err := drive(ctx, cfg, srv.url, m, stderr)
	if err != nil {
		return err
	}
	printReport(stdout, cfg, built, rows, srv.storeFile)
	return nil
}

// printReport prints the phases' table and the store's size per warning.
func printReport(w io.Writer, cfg *config, b *buildInfo, rows []phaseRow, storeFile string) {
	fmt.Fprintf(w, "\nscale: %d warnings (%d attempts, %d approvals at build), %d devices; %s; load average %s now\n",
		b.Warnings, b.Attempts, b.Reviews, cfg.devices, time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine.LoadAverage())
	if len(cfg.childEnv) > 0 {
		fmt.Fprintf(w, "server environment: %s\n", strings.Join(cfg.childEnv, " "))
	}
	fmt.Fprintf(w, "\n| phase | time | RssAnon end | RssAnon peak | RssFile end | VmRSS end | VmHWM | Go heap in use | Go heap idle, not returned | Go sys | store file | load avg |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var peak uint64
	for _, r := range rows {
		peak = max(peak, r.anonPeak)
		fmt.Fprintf(w, "| %s | %v | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, r.took.Round(100*time.Millisecond), mib(r.end.Anon), mib(r.anonPeak), mib(r.end.File), mib(r.end.RSS), mib(r.end.Peak),
			mib(r.heap.inuse), mib(r.heap.idleKept), mib(r.heap.sys), mib(uint64(r.fileSize)), r.loadAvg)
	}
	verdict := "met"
	if peak >= targetAnon {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "\nRssAnon peak over the run: %s against the target of %s: %s\n", mib(peak), mib(targetAnon), verdict)
	if fi, err := os.Stat(storeFile); err == nil && b.Warnings > 0 {
		fmt.Fprintf(w, "store file: %s, %.0f bytes per warning (%d warnings, %.2f log entries per warning at build; target under 2 KB)\n",
			mib(uint64(fi.Size())), float64(fi.Size())/float64(b.Warnings), b.Warnings, float64(b.LogEntries)/float64(b.Warnings))
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
