// Command cityday simulates one day of the warning loop in the demo city of
// Xuchang, end to end, in this process on 127.0.0.1: the morning feed, its
// dispatch by county and township leads, a hundred and more village cadres'
// phones on the client SDK recording dissuasion attempts while their signal
// comes and goes, and township leads reviewing the work. At the end every
// phone comes back online and syncs, and the program prints the loop's
// figures from the statistics API (GET /v1/stats) for the city and each
// county, and checks them against its own count.
//
//	go run ./examples/cityday                        # 169 phones, 600 warnings, 20 s
//	go run ./examples/cityday -phones 40 -duration 5s
//
// The server is the real one (servertest.Open: bbolt store with fsync,
// service, HTTP API). Every phone and lead is a clientsdk.Client with its own
// sealed local store in a temporary folder and its own 32-byte key; each
// phone's HTTP transport has a switch that takes it offline (requests fail)
// for random periods, and now and then drops a sync answer after the server
// has handled the request, as a phone losing signal mid-request does.
//
// The simulation keeps its own count: the feed's answer, and every op the
// phones and leads made whose final state in the SDK was applied (an op
// that leaves the outbox without being rejected). From that ledger, and
// the phones' final synced states for the times of contact and resolution,
// it computes the figures the server should report; it also computes them
// from the warnings a center SDK client holds after a final full sync. It
// prints PASS or FAIL for each figure and exits non-zero when any differs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
)

func main() { cli.Main("cityday", cli.Command(parseFlags, simulate)) }

// config is the command line.
type config struct {
	phones   int
	warnings int
	duration time.Duration
	workers  int
	rounds   int
	offline  float64
	seed     int64
	quiet    bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("cityday", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.phones, "phones", 0, "village cadres with a phone on the SDK (0: every cadre of the demo city, 169)")
	fs.IntVar(&c.warnings, "warnings", 600, "warnings in the morning feed (today so far, Beijing time)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long the phones and leads work")
	fs.IntVar(&c.workers, "workers", 32, "phones and leads taking their turn at once")
	fs.IntVar(&c.rounds, "rounds", 60, "rounds of turns the day is cut into, spread over -duration (fewer if a round takes longer)")
	fs.Float64Var(&c.offline, "offline", 0.2, "chance that a phone in signal loses it on a turn")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the demo city, the feed and the people's choices")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	if err := cli.ParseAll(fs, args); err != nil {
		return nil, err
	}
	switch {
	case c.phones < 0:
		return nil, errors.New("-phones must be 0 (all) or more")
	case c.warnings < 1 || c.warnings > 100_000:
		return nil, errors.New("-warnings must be between 1 and 100000")
	case c.duration <= 0 || c.duration > time.Hour:
		return nil, errors.New("-duration must be positive and at most an hour")
	case c.workers < 1 || c.workers > 256:
		return nil, errors.New("-workers must be between 1 and 256")
	case c.rounds < 1 || c.rounds > 100_000:
		return nil, errors.New("-rounds must be between 1 and 100000")
	case c.offline < 0 || c.offline > 1:
		return nil, errors.New("-offline must be between 0 and 1")
	}
	return c, nil
}

// simulate runs the day cfg describes.
func simulate(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	// Everything is bounded by the count of phones and warnings and by
	// -duration; this is the last resort against a hang.
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+5*time.Minute)
	defer cancel()

	start := time.Now()
	s, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	s.progress("setup done in %v\n", time.Since(start).Round(time.Millisecond))

	if err := s.simulate(ctx); err != nil {
		return err
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	err = s.report(ctx, stdout)
	fmt.Fprintf(stdout, "\nran in %v (setup %v, day %v, settling and report %v)\n",
		time.Since(start).Round(time.Millisecond), s.timing.setup.Round(time.Millisecond),
		s.timing.day.Round(time.Millisecond), time.Since(s.timing.settleStart).Round(time.Millisecond))
	return err
}
