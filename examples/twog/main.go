// Command twog measures what village cadres and their leads live with on a
// rural 2G link: the real SDK (clientsdk, with its default HTTP client)
// talks to the real server, started in this process on 127.0.0.1, through
// a shaping proxy (internal/netshape) that is slow, far away, cut every
// few kilobytes or gone for minutes. For each scenario it prints the wall
// time, the bytes each way and the connections the proxy saw, the requests
// the SDK made, and how the wall time compares with the bytes at the
// link's rate; then PASS or FAIL against the scenario's target.
//
//  1. A cadre's morning: the first sync of a village cadre with about 75
//     warnings, at 64 kbit/s and 800 ms round trip.
//  2. A day's 30 attempts, 10 of them with a 200 KiB photo, over 64 kbit/s
//     cut every 40 KB, synced until nothing is pending; the server must
//     hold each attempt and photo once.
//  3. A township lead's first sync of a month's warnings at 64 kbit/s.
//  4. A county lead's first sync of about 2,500 warnings at 50 kbit/s and
//     1500 ms round trip, under 60 s; and what each field of a page costs.
//  5. The first sync after a 7-minute outage, with background sync on and
//     an op made during the outage: confirmed within 5 s of the link's
//     return when the app calls NetworkAvailable, within 60 s without.
//
// The server holds the demo city of Xuchang's units, the people of one
// county, and a month of that county's warnings with the work done on
// them (dispatches, assignments, attempts with notes, places and photos,
// reviews), imported and pushed through the real API before anything is
// measured (see month.go).
//
//	go run ./examples/twog                       # everything, about 18 minutes
//	go run ./examples/twog -only 4               # the county lead only
//	go run ./examples/twog -only 5 -outage 1m    # a shorter outage
//	go run ./examples/twog -scale 0.2 -speedup 10 -outage 20s  # a quick look
//
// Passwords are hashed with production argon2id costs here, so the
// program signs in as few people as it can. It exits non-zero only when it
// cannot run; a missed target is a FAIL line, not an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
	"github.com/fieldsync/fieldsync/examples/internal/machine"
)

func main() { cli.Main("twog", cli.Command(parseFlags, runScenarios)) }

// config is the command line.
type config struct {
	only    []int
	scale   float64
	speedup float64
	outage  time.Duration
	seed    int64
	quiet   bool
}

// scenarios are the scenario numbers, in the order they run.
var scenarios = []int{1, 2, 3, 4, 5}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var only string
	fs := flag.NewFlagSet("twog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&only, "only", "", "run only these scenarios, e.g. 4 or 1,2 (default: all five)")
	fs.Float64Var(&c.scale, "scale", 1, "multiply every size by this: the county's warnings, the day's attempts and photos, a photo's bytes")
	fs.Float64Var(&c.speedup, "speedup", 1, "multiply every link's rates and divide its delays by this (the targets are for 1)")
	fs.DurationVar(&c.outage, "outage", 7*time.Minute, "how long the link is gone in scenario 5")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the demo city, the month of work and the links")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	switch {
	case !(c.scale > 0 && c.scale <= 20):
		return nil, errors.New("-scale must be above 0 and at most 20")
	case !(c.speedup >= 1 && c.speedup <= 1000):
		return nil, errors.New("-speedup must be between 1 and 1000")
	case c.outage < time.Second || c.outage > time.Hour:
		return nil, errors.New("-outage must be between 1s and 1h")
	}
	c.only = scenarios
	if only != "" {
		c.only = nil
		for _, f := range strings.Split(only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || !slices.Contains(scenarios, n) {
				return nil, fmt.Errorf("-only: %q is not a scenario (1 to 5)", f)
			}
			if !slices.Contains(c.only, n) {
				c.only = append(c.only, n)
			}
		}
		slices.Sort(c.only)
	}
	return c, nil
}

// runScenarios runs the scenarios cfg names and prints their figures.
func runScenarios(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	start := time.Now()
	fmt.Fprintf(stdout, "fieldsync twog: scenarios %v, scale %g, link speedup %g, outage %v, seed %d\n",
		cfg.only, cfg.scale, cfg.speedup, cfg.outage, cfg.seed)
	fmt.Fprintf(stdout, "machine: %d CPUs, GOMAXPROCS %d, %s %s/%s, 1-min load average %s (other work on the machine skews every figure)\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, machine.LoadAverage())

	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	e.printSetup(stdout)

	var results []*result
	for _, n := range cfg.only {
		var rs []*result
		var err error
		switch n {
		case 1:
			rs, err = e.cadreMorning(ctx)
		case 2:
			rs, err = e.dayOfAttempts(ctx)
		case 3:
			rs, err = e.leadFirstSync(ctx, leadTownship)
		case 4:
			rs, err = e.leadFirstSync(ctx, leadCounty)
		case 5:
			rs, err = e.outageScenario(ctx)
		}
		if err != nil {
			return fmt.Errorf("scenario %d: %w", n, err)
		}
		for _, r := range rs {
			r.print(stdout)
		}
		results = append(results, rs...)
	}
	printTable(stdout, results)
	fmt.Fprintf(stdout, "\nran in %v (setup %v); 1-min load average at the end %s\n",
		time.Since(start).Round(time.Second), e.setupTime.Round(100*time.Millisecond), machine.LoadAverage())
	return nil
}
