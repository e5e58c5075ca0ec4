package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/machine"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The open loop (-rate, -rates) is the load as phones make it: a phone
// records attempts when its cadre does, not when the server has answered
// its last push. The closed loop (each phone pushes again as soon as its
// sync ends) measures throughput, but hides latency: a slow answer slows
// the arrivals with it, so queues never build. Here each phone pushes on a
// schedule of its own, and a push is timed from when it was due.

// parseRates reads -rate and -rates into c.rates and, for the open loop,
// gives -devices, -warnings and -duration their open-loop defaults where
// fs did not set them.
func (c *config) parseRates(fs *flag.FlagSet, rate int, rates string) error {
	switch {
	case rate < 0:
		return errors.New("-rate must be positive (0: the closed loop)")
	case rate > 0 && rates != "":
		return errors.New("give -rate or -rates, not both")
	case rate > 0:
		c.rates = []int{rate}
	case rates != "":
		for _, f := range strings.Split(rates, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r < 1 {
				return fmt.Errorf("-rates: %q is not a positive number of ops/s", f)
			}
			c.rates = append(c.rates, r)
		}
	}
	if len(c.rates) == 0 {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["devices"] {
		c.devices = openLoopDevices
	}
	if !set["warnings"] {
		c.warningsPerDevice = openLoopWarnings
	}
	if !set["duration"] {
		c.duration = openLoopDuration
	}
	return nil
}

// openResult is one open-loop phase at one rate.
type openResult struct {
	rate int // ops/s asked for
	// wall runs from the start to the last push's answer, and is never
	// shorter than the schedule: the achieved rate divides by it.
	wall  time.Duration
	due   int   // pushes the schedule held
	acked int64 // ops acknowledged (applied or duplicate): durable
	// pushLat runs from each push's due time to its answer, so a push
	// that waited for its phone's previous one counts the wait.
	pushLat []time.Duration
	// pullLat is each pull request's, from when it was sent.
	pullLat []time.Duration
	// late counts pushes due while their phone's previous push or pull
	// was still in flight; abandoned, those still unanswered when the
	// phase gave up (their latency is not in pushLat).
	late, abandoned int
	errors          int64
	firstErr        error

	diag                        *diag
	loadAvgBefore, loadAvgAfter string
}

func (r *openResult) achieved() float64 { return float64(r.acked) / r.wall.Seconds() }

// openLoad runs one open-loop phase: for cfg.duration, pushes of cfg.batch
// ops are due at rate ops/s in all, spread over the devices. Each device
// pushes every devices*batch/rate, from a random phase, one push at a time;
// after each push it pulls to its head, as in the closed loop. A push due
// while the device is still busy goes when it is free, and is timed from
// when it was due. Pushes still queued long after the schedule ends
// (another cfg.duration, at least 30 s) are abandoned and counted.
func openLoad(ctx context.Context, cfg *config, rate int, devices []*device, stderr io.Writer) (*openResult, error) {
	res := &openResult{rate: rate}
	period := time.Duration(float64(time.Second) * float64(len(devices)*cfg.batch) / float64(rate))
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), uint64(rate)))
	phases := make([]time.Duration, len(devices))
	for i := range phases {
		phases[i] = time.Duration(rng.Int64N(int64(max(1, period))))
	}
	var acked, errs atomic.Int64
	var errOnce sync.Once
	type devStats struct {
		pushLat, pullLat []time.Duration
		due, answered    int
		late             int
		lastAnswer       time.Time
	}
	stats := make([]devStats, len(devices))
	start := time.Now()
	deadline := start.Add(cfg.duration)
	giveUp := deadline.Add(max(cfg.duration, 30*time.Second))
	fail := func(err error) {
		errs.Add(1)
		errOnce.Do(func() { res.firstErr = err })
		time.Sleep(50 * time.Millisecond) // a failing server is not hammered
	}
	stopProgress := progress(stderr, start, &acked, &errs)

	var wg sync.WaitGroup
	for i, d := range devices {
		st := &stats[i]
		for k := 0; k < cfg.maxBatches && phases[i]+time.Duration(k)*period < cfg.duration; k++ {
			st.due++
		}
		wg.Go(func() {
			var free time.Time // when this device's last sync ended
			for k := range st.due {
				due := start.Add(phases[i] + time.Duration(k)*period)
				if free.After(due) {
					st.late++
				}
				if !sleepUntil(ctx, due) || !time.Now().Before(giveUp) {
					return
				}
				ops := d.recordOps(cfg.batch)
				for time.Now().Before(giveUp) && ctx.Err() == nil {
					resp, err := d.c.Push(ctx, syncproto.PushRequest{DeviceID: d.id, Ops: ops})
					if err != nil {
						fail(fmt.Errorf("push: %w", err))
						continue
					}
					st.lastAnswer = time.Now()
					st.pushLat = append(st.pushLat, st.lastAnswer.Sub(due))
					st.answered++
					for _, r := range resp.Results {
						if r.Status == syncproto.StatusApplied || r.Status == syncproto.StatusDuplicate {
							acked.Add(1)
						}
					}
					if err := d.notePushed(ops, resp); err != nil {
						fail(err)
					}
					break
				}
				for more := true; more && time.Now().Before(giveUp) && ctx.Err() == nil; {
					resp, took, err := d.pullPage(ctx)
					if resp == nil {
						fail(err)
						continue
					}
					st.pullLat = append(st.pullLat, took)
					if err != nil {
						fail(err)
					}
					more = resp.More
				}
				free = time.Now()
			}
		})
	}
	wg.Wait()
	stopProgress()
	res.wall = cfg.duration
	for _, st := range stats {
		res.pushLat = append(res.pushLat, st.pushLat...)
		res.pullLat = append(res.pullLat, st.pullLat...)
		res.due += st.due
		res.late += st.late
		res.abandoned += st.due - st.answered
		res.wall = max(res.wall, st.lastAnswer.Sub(start))
	}
	res.acked, res.errors = acked.Load(), errs.Load()
	if res.acked == 0 {
		return nil, fmt.Errorf("no op was acknowledged: %v", res.firstErr)
	}
	return res, ctx.Err()
}

// sleepUntil waits for t, and says false if ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// openReport is what the open-loop run prints: a phase per rate, and what
// they wrote into bbolt together.
type openReport struct {
	cfg     *config
	phases  []*openResult
	buckets *bucketGrowth
}

// runOpenLoop sets up the city once, runs an open-loop phase at each
// rate in turn against the same server and prints a line per rate and
// the bucket table.
func runOpenLoop(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "fieldsync load, open loop: %d devices, batches of %d ops, %v per rate at %s ops/s, fsync %s, GOMAXPROCS %d, GC percent %d, %s\n",
		cfg.devices, cfg.batch, cfg.duration, joinInts(cfg.rates), onOff(!cfg.noSync), runtime.GOMAXPROCS(0), gcPercent(), runtime.Version())
	rep, err := measureOpenLoop(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	rep.print(stdout)
	return nil
}

// measureOpenLoop sets up a server and its phones and runs the open-loop
// phases.
func measureOpenLoop(ctx context.Context, cfg *config, stderr io.Writer) (*openReport, error) {
	env, err := setup(ctx, cfg, "", stderr)
	if err != nil {
		return nil, err
	}
	defer env.close()
	sizes, err := env.bucketSizes(stderr)
	if err != nil {
		return nil, err
	}
	stopProfile, err := startProfiles(cfg.cpuProfile, cfg.memProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()

	rep := &openReport{cfg: cfg}
	var acked, pageBytes int64
	for _, rate := range cfg.rates {
		fmt.Fprintf(stderr, "open loop: %d ops/s from %d devices for %v ...\n", rate, cfg.devices, cfg.duration)
		loadAvg := machine.LoadAverage()
		start := snapshot(env.srv.Store)
		res, err := openLoad(ctx, cfg, rate, env.devices, stderr)
		if err != nil {
			return nil, fmt.Errorf("open loop at %d ops/s: %w", rate, err)
		}
		res.diag = diff(start, snapshot(env.srv.Store))
		res.loadAvgBefore, res.loadAvgAfter = loadAvg, machine.LoadAverage()
		rep.phases = append(rep.phases, res)
		acked += res.acked
		pageBytes += res.diag.pageBytes
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	if rep.buckets, err = env.bucketGrowth(sizes, acked, pageBytes, stderr); err != nil {
		return nil, err
	}
	return rep, nil
}

func (r *openReport) print(w io.Writer) {
	fmt.Fprintf(w, "\n== fieldsync open-loop results ==\n")
	fmt.Fprintf(w, "open loop         each phone pushes %d ops on a schedule of its own (every devices x batch / rate, from a random phase), one push at a time: a push due while the phone's last push or pull is in flight waits for it, and is timed from when it was due (no coordinated omission); each push is followed by the phone's pull to its head, as in the closed loop\n",
		r.cfg.batch)
	for _, p := range r.phases {
		fmt.Fprintf(w, "rate %6d ops/s  achieved %.0f ops/s (%d ops acknowledged in %.1f s) | push from due p50 %s p99 %s p999 %s max %s (%d pushes, %d late to start, %d abandoned) | pull p50 %s p99 %s max %s (%d pulls) | bbolt %.0f B of pages per op | %.0f µs CPU per op | load average %s before, %s after\n",
			p.rate, p.achieved(), p.acked, p.wall.Seconds(),
			ms(percentile(p.pushLat, .5)), ms(percentile(p.pushLat, .99)), ms(percentile(p.pushLat, .999)), ms(percentile(p.pushLat, 1)),
			len(p.pushLat), p.late, p.abandoned,
			ms(percentile(p.pullLat, .5)), ms(percentile(p.pullLat, .99)), ms(percentile(p.pullLat, 1)), len(p.pullLat),
			float64(p.diag.pageBytes)/float64(max(1, p.acked)), float64(p.diag.cpu.Microseconds())/float64(max(1, p.acked)),
			p.loadAvgBefore, p.loadAvgAfter)
		if p.errors > 0 {
			fmt.Fprintf(w, "                  %d failed requests at %d ops/s (retried); first: %v\n", p.errors, p.rate, p.firstErr)
		}
	}
	r.buckets.print(w)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
