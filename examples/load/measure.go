package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/procstatus"
	"github.com/fieldsync/fieldsync/syncproto"
)

// loadResult is what the phones did during the load phase.
type loadResult struct {
	wall             time.Duration
	acked            int64 // ops acknowledged (applied or duplicate): durable
	pushes, pulls    int
	pushLat, pullLat []time.Duration
	pushBytes        int64 // request + response bodies of every push
	pullBytes        int64 // of every pull
	pulledChanges    int64
	kept             int64 // puts pulls left out (have)
	errors           int64
	firstErr         error
}

// runLoad lets every phone push a batch, then pull to the head, over and
// over until the duration ends (or -max-batches), and waits for them.
func (e *env) runLoad(ctx context.Context, stderr io.Writer) (*loadResult, error) {
	return loadDevices(ctx, e.cfg, e.devices, stderr)
}

// loadDevices is the load phase of devices, whichever servers they reach: one
// partition, or several directly or through a proxy (-through-nginx).
func loadDevices(ctx context.Context, cfg *config, devices []*device, stderr io.Writer) (*loadResult, error) {
	res := &loadResult{}
	var acked, errs atomic.Int64
	var errOnce sync.Once
	type devStats struct {
		pushLat, pullLat     []time.Duration
		pushBytes, pullBytes int64
		changes, kept        int64
	}
	stats := make([]devStats, len(devices))
	start := time.Now()
	deadline := start.Add(cfg.duration)
	// After the deadline a phone finishes the sync it is in; a failing
	// request is retried until then, and given up a little after.
	giveUp := deadline.Add(10 * time.Second)
	fail := func(err error) {
		errs.Add(1)
		errOnce.Do(func() { res.firstErr = err })
		time.Sleep(50 * time.Millisecond)
	}

	stopProgress := progress(stderr, start, &acked, &errs)

	var wg sync.WaitGroup
	for i, d := range devices {
		st := &stats[i]
		wg.Go(func() {
			for b := 0; b < cfg.maxBatches && time.Now().Before(deadline) && ctx.Err() == nil; b++ {
				ops := d.recordOps(cfg.batch)
				for time.Now().Before(giveUp) && ctx.Err() == nil {
					before := d.c.Stats()
					t0 := time.Now()
					resp, err := d.c.Push(ctx, syncproto.PushRequest{DeviceID: d.id, Ops: ops})
					if err != nil {
						fail(fmt.Errorf("push: %w", err))
						continue
					}
					st.pushLat = append(st.pushLat, time.Since(t0))
					st.pushBytes += bodyBytes(before, d.c.Stats())
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
					before := d.c.Stats()
					resp, took, err := d.pullPage(ctx)
					if resp == nil {
						fail(err)
						continue
					}
					st.pullLat = append(st.pullLat, took)
					st.pullBytes += bodyBytes(before, d.c.Stats())
					st.changes += int64(len(resp.Changes))
					st.kept += int64(len(resp.Kept))
					if err != nil {
						fail(err)
					}
					more = resp.More
				}
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	stopProgress()
	res.acked, res.errors = acked.Load(), errs.Load()
	for _, st := range stats {
		res.pushLat = append(res.pushLat, st.pushLat...)
		res.pullLat = append(res.pullLat, st.pullLat...)
		res.pushBytes += st.pushBytes
		res.pullBytes += st.pullBytes
		res.pulledChanges += st.changes
		res.kept += st.kept
	}
	res.pushes, res.pulls = len(res.pushLat), len(res.pullLat)
	if res.acked == 0 {
		return nil, fmt.Errorf("no op was acknowledged: %v", res.firstErr)
	}
	return res, ctx.Err()
}

// progress prints the ops acknowledged so far every 5 s, from start,
// until stop is called.
func progress(stderr io.Writer, start time.Time, acked, errs *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				el := time.Since(start)
				fmt.Fprintf(stderr, "load: %5.1fs %8d ops acknowledged (%.0f ops/s) %d errors\n",
					el.Seconds(), acked.Load(), float64(acked.Load())/el.Seconds(), errs.Load())
			}
		}
	}()
	return func() { close(done) }
}

// bodyBytes is the request and response bodies counted between two Stats
// of one client; responses are counted after gzip is undone.
func bodyBytes(before, after remote.Stats) int64 {
	return after.BytesOut - before.BytesOut + after.BytesIn - before.BytesIn
}

// noChange is the cost of a pull at the head of a device's scope.
type noChange struct {
	pulls                       int
	mean, p50, p99              time.Duration // end to end over loopback
	serverMean, serverP50       time.Duration // inside the server
	bytesOut, bytesIn           int64         // bodies of one pull
	pullsCaptured, changesFound int
}

// pullPoint is a no-change pull timed at one log size.
type pullPoint struct {
	when string
	log  uint64
	*noChange
}

// pullPoint times the probe's no-change pull with the log as it is now.
func (e *env) pullPoint(ctx context.Context, when string) (*pullPoint, error) {
	log, err := e.srv.Store.LastSeq()
	if err != nil {
		return nil, err
	}
	nc, err := e.noChangePulls(ctx, e.probe, e.cfg.noChangePulls)
	if err != nil {
		return nil, fmt.Errorf("no-change pulls %s: %w", when, err)
	}
	return &pullPoint{when: when, log: log, noChange: nc}, nil
}

// noChangePulls brings d to its head, then pulls n times in a row from
// there, timing each end to end and as the server saw it.
func (e *env) noChangePulls(ctx context.Context, d *device, n int) (*noChange, error) {
	if _, err := d.pullToHead(ctx, d.cursor); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	res := &noChange{pulls: n}
	first := d.c.Stats()
	e.timings.start()
	for range n {
		t0 := time.Now()
		resp, err := d.c.Pull(ctx, syncproto.PullRequest{DeviceID: d.id, Cursor: d.cursor})
		if err != nil {
			e.timings.stop()
			return nil, err
		}
		lat = append(lat, time.Since(t0))
		res.changesFound += len(resp.Changes)
	}
	server := e.timings.stop()
	last := d.c.Stats()
	res.bytesOut = (last.BytesOut - first.BytesOut) / int64(n)
	res.bytesIn = (last.BytesIn - first.BytesIn) / int64(n)
	if res.changesFound > 0 {
		return nil, fmt.Errorf("%d changes came while nothing changed", res.changesFound)
	}
	res.mean, res.p50, res.p99 = mean(lat), percentile(lat, 0.50), percentile(lat, 0.99)
	res.pullsCaptured = len(server)
	if len(server) > 0 {
		res.serverMean, res.serverP50 = mean(server), percentile(server, 0.50)
	}
	return res, nil
}

// warningSizes is what a warning costs on the wire in MessagePack, before
// gzip: the warning state alone (data) and the whole put change.
type warningSizes struct {
	attempts     int
	data, change int
	largest      int // largest put in the device's scope
	mostAttempts int
}

// warningSize pulls d's scope from the start and measures the put of its
// median-sized warning.
func (e *env) warningSize(ctx context.Context, d *device) (*warningSizes, error) {
	type sized struct {
		attempts, data, change int
	}
	var all []sized
	cursor := ""
	for range 10_000 {
		resp, err := d.c.Pull(ctx, syncproto.PullRequest{DeviceID: d.id, Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			return nil, err
		}
		for _, ch := range resp.Changes {
			w, ok := ch.Data.(*syncproto.Warning)
			if ch.Kind != syncproto.ChangePut || !ok {
				continue
			}
			data, err := syncproto.Msgpack.Marshal(w)
			if err != nil {
				return nil, err
			}
			change, err := syncproto.Msgpack.Marshal(ch)
			if err != nil {
				return nil, err
			}
			all = append(all, sized{len(w.Attempts), len(data), len(change)})
		}
		cursor = resp.Cursor
		if !resp.More {
			break
		}
	}
	if len(all) == 0 {
		return nil, errors.New("the device holds no warning")
	}
	slices.SortFunc(all, func(a, b sized) int { return a.change - b.change })
	med, big := all[len(all)/2], all[len(all)-1]
	return &warningSizes{attempts: med.attempts, data: med.data, change: med.change, largest: big.change, mostAttempts: big.attempts}, nil
}

// initialSyncResult is a township lead's first sync.
type initialSyncResult struct {
	warnings       int
	changes, pages int
	first, best    time.Duration
	bodyBytes      int64 // response bodies, after gzip is undone
	// freshData and freshChange are the MessagePack sizes of one pulled
	// warning that has no attempt yet: its state and its put change.
	freshData, freshChange int
}

// initialSync creates a township of five villages with a cadre each and a
// lead, imports n warnings into its villages, and times the lead's pull
// of everything from an empty cursor in pages of 2000, three times.
func (e *env) initialSync(ctx context.Context, n int) (*initialSyncResult, error) {
	const township = "411002090" // free in the demo city: its subdistricts are 001-004
	units := []syncproto.UnitInput{{Code: township, Name: "压测街道"}}
	users := []syncproto.UserInput{{Username: "lead-" + township, Password: "demo-lead", Name: "压测镇长", Unit: township}}
	var villages []string
	for i := 1; i <= 5; i++ {
		code := fmt.Sprintf("%s%03d", township, i)
		villages = append(villages, code)
		units = append(units, syncproto.UnitInput{Code: code, Name: fmt.Sprintf("压测%d社区", i)})
		users = append(users, syncproto.UserInput{Username: fmt.Sprintf("cadre-%s-1", code), Password: "demo-cadre", Name: fmt.Sprintf("压测村干部%d", i), Unit: code})
	}
	if _, err := e.admin.c.UpsertUnits(ctx, units); err != nil {
		return nil, err
	}
	if _, err := e.upsertUsers(ctx, users); err != nil {
		return nil, err
	}
	if _, err := e.importFeed(ctx, func(i int) string { return villages[i%len(villages)] }, n); err != nil {
		return nil, err
	}
	lead, err := e.login(ctx, users[0].Username, users[0].Password)
	if err != nil {
		return nil, err
	}
	res := &initialSyncResult{warnings: n}
	for run := range 3 {
		before := lead.c.Stats()
		t0 := time.Now()
		cursor, changes, pages := "", 0, 0
		for more := true; more; pages++ {
			resp, err := lead.c.Pull(ctx, syncproto.PullRequest{DeviceID: lead.id, Cursor: cursor, Limit: syncproto.MaxPullLimit})
			if err != nil {
				return nil, err
			}
			changes += len(resp.Changes)
			cursor, more = resp.Cursor, resp.More
			if res.freshChange == 0 {
				if err := res.measureFresh(resp.Changes); err != nil {
					return nil, err
				}
			}
		}
		d := time.Since(t0)
		if changes < n {
			return nil, fmt.Errorf("the lead pulled %d changes, want at least %d", changes, n)
		}
		if run == 0 {
			res.first, res.best = d, d
			res.changes, res.pages, res.bodyBytes = changes, pages, lead.c.Stats().BytesIn-before.BytesIn
		}
		res.best = min(res.best, d)
	}
	return res, nil
}

// measureFresh encodes the first warning put among changes.
func (res *initialSyncResult) measureFresh(changes []syncproto.Change) error {
	for _, ch := range changes {
		w, ok := ch.Data.(*syncproto.Warning)
		if ch.Kind != syncproto.ChangePut || !ok {
			continue
		}
		data, err := syncproto.Msgpack.Marshal(w)
		if err != nil {
			return err
		}
		change, err := syncproto.Msgpack.Marshal(ch)
		if err != nil {
			return err
		}
		res.freshData, res.freshChange = len(data), len(change)
		return nil
	}
	return nil
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// percentile returns the p-th quantile (0 to 1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// memory is this process's memory from /proc/self/status, in bytes: VmRSS
// splits into anonymous memory (the Go heap, stacks) and file pages, which
// here are mostly bbolt's memory-mapped database: page cache the kernel can
// drop, counted in RSS once touched.
type memory struct {
	rss, peak, anon, file int64
	heapInuse             uint64
	heapRetained          uint64 // heap memory the Go runtime holds from the OS
}

func readMemory() memory {
	var m memory
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapInuse, m.heapRetained = ms.HeapInuse, ms.HeapSys-ms.HeapReleased
	if pm, err := procstatus.Read(0); err == nil {
		m.rss, m.peak, m.anon, m.file = int64(pm.RSS), int64(pm.Peak), int64(pm.Anon), int64(pm.File)
	}
	return m
}
