package main

import (
	"fmt"
	"io"
	"time"
)

// report holds every figure the load program prints.
type report struct {
	cfg                         *config
	load                        *loadResult
	pulls                       []*pullPoint // no-change pulls as the log grew
	warning                     *warningSizes
	initial                     *initialSyncResult
	mem                         memory
	storeFile                   int64 // bytes of the bbolt file
	diag                        *diag
	buckets                     *bucketGrowth // what the load phase wrote into bbolt
	loadAvgBefore, loadAvgAfter string
}

// Targets of DESIGN.md.
const (
	targetOpsPerSec    = 30_000
	targetPushP99      = 50 * time.Millisecond
	targetNoChangePull = 300 * time.Microsecond
	targetInitialSync  = time.Second
	targetNoChangeSync = 200 // bytes of bodies
	targetWarningPut   = 600 // bytes of msgpack
)

func (r *report) print(w io.Writer) {
	l := r.load
	opsPerSec := float64(l.acked) / l.wall.Seconds()
	fmt.Fprintf(w, "\n== fieldsync load results ==\n")
	fmt.Fprintf(w, "durable push      %d ops acknowledged in %.2f s = %.0f ops/s (%d devices, batches of %d, fsync %s)\n",
		l.acked, l.wall.Seconds(), opsPerSec, r.cfg.devices, r.cfg.batch, onOff(!r.cfg.noSync))
	fmt.Fprintf(w, "machine load      1-min load average %s before the load phase, %s after (other work on the machine skews every figure)\n", r.loadAvgBefore, r.loadAvgAfter)
	r.diag.print(w)
	fmt.Fprintf(w, "CPU per op        %.0f µs of process CPU per acknowledged op (server and clients; steadier than ops/s on a shared machine)\n",
		float64(r.diag.cpu.Microseconds())/float64(max(1, l.acked)))
	if l.errors > 0 {
		fmt.Fprintf(w, "errors            %d failed requests (retried); first: %v\n", l.errors, l.firstErr)
	}
	fmt.Fprintf(w, "push latency      p50 %s  p99 %s  max %s  (%d pushes)\n",
		ms(percentile(l.pushLat, .5)), ms(percentile(l.pushLat, .99)), ms(percentile(l.pushLat, 1)), l.pushes)
	fmt.Fprintf(w, "pull latency      p50 %s  p99 %s  max %s  (%d pulls under load, %.1f changes each, %.1f kept)\n",
		ms(percentile(l.pullLat, .5)), ms(percentile(l.pullLat, .99)), ms(percentile(l.pullLat, 1)), l.pulls,
		float64(l.pulledChanges)/float64(max(1, l.pulls)), float64(l.kept)/float64(max(1, l.pulls)))
	fmt.Fprintf(w, "sync bodies       push of %d ops: %d B (request + response, mean); pull under load: %d B mean (have %s)\n",
		r.cfg.batch, l.pushBytes/int64(max(1, l.pushes)), l.pullBytes/int64(max(1, l.pulls)), onOff(r.cfg.have))
	for _, p := range r.pulls {
		fmt.Fprintf(w, "no-change pull    %-12s log %7d ops: server mean %s p50 %s | loopback mean %s p50 %s p99 %s (%d sequential pulls)\n",
			p.when, p.log, ms(p.serverMean), ms(p.serverP50), ms(p.mean), ms(p.p50), ms(p.p99), p.pulls)
	}
	last := r.pulls[len(r.pulls)-1]
	fmt.Fprintf(w, "no-change sync    %d B request + %d B response = %d B of bodies\n",
		last.bytesOut, last.bytesIn, last.bytesOut+last.bytesIn)
	ws := r.warning
	fmt.Fprintf(w, "warning put       median warning of a cadre (%d attempts): state %d B, put change %d B; largest put %d B (%d attempts)\n",
		ws.attempts, ws.data, ws.change, ws.largest, ws.mostAttempts)
	if in := r.initial; in != nil {
		fmt.Fprintf(w, "warning put       fresh warning (no attempt): state %d B, put change %d B\n", in.freshData, in.freshChange)
		fmt.Fprintf(w, "initial sync      township lead, %d warnings: %d changes in %d pages, %.1f MB of bodies (gzip %s): first %s, best of 3 %s\n",
			in.warnings, in.changes, in.pages, float64(in.bodyBytes)/1e6, onOff(r.cfg.gzip), ms(in.first), ms(in.best))
	}
	fmt.Fprintf(w, "memory            VmRSS %.0f MiB (anonymous %.0f MiB: Go heap in use %.0f MiB, held from the OS %.0f MiB; file pages %.0f MiB, mostly the mmapped store), peak %.0f MiB; server and %d clients in one process (holding their warnings' states: %s, -have); log %d ops, store file %.0f MiB\n",
		mib(r.mem.rss), mib(r.mem.anon), mib(int64(r.mem.heapInuse)), mib(int64(r.mem.heapRetained)), mib(r.mem.file), mib(r.mem.peak), r.cfg.devices, onOff(r.cfg.have), r.pulls[len(r.pulls)-1].log, mib(r.storeFile))
	if r.buckets != nil {
		r.buckets.print(w)
	}
	if r.cfg.opsTarget {
		r.printTargets(w, opsPerSec)
	}
}

func (r *report) printTargets(w io.Writer, opsPerSec float64) {
	fmt.Fprintf(w, "\n== against DESIGN.md targets (figures only; nothing fails the run) ==\n")
	row := func(target, measured string, pass bool, note string) {
		verdict := "PASS"
		if !pass {
			verdict = "FAIL"
		}
		if note != "" {
			verdict += " " + note
		}
		fmt.Fprintf(w, "%-46s %-26s %s\n", target, measured, verdict)
	}
	l := r.load
	row("durable push >= 30000 ops/s", fmt.Sprintf("%.0f ops/s", opsPerSec), opsPerSec >= targetOpsPerSec,
		fmt.Sprintf("(%.0f%% of target)", 100*opsPerSec/targetOpsPerSec))
	p99 := percentile(l.pushLat, .99)
	row("p99 push < 50 ms", ms(p99), p99 < targetPushP99, fmt.Sprintf("(at %.0f ops/s, not at 30000)", opsPerSec))
	first, nc := r.pulls[0], r.pulls[len(r.pulls)-1]
	row("no-change pull < 0.3 ms server time", "mean "+ms(nc.serverMean), nc.serverMean < targetNoChangePull,
		fmt.Sprintf("(loopback end to end: mean %s)", ms(nc.mean)))
	ratio := float64(nc.serverMean) / float64(max(1, first.serverMean))
	fmt.Fprintf(w, "%-46s %-26s %s\n", "pull flat from 10k to 1M ops", fmt.Sprintf("x%.2f", ratio),
		fmt.Sprintf("INFO: server time at log %d vs %d ops here; 1M in BenchmarkPullNoChangeAtScale", nc.log, first.log))
	if in := r.initial; in != nil {
		row(fmt.Sprintf("initial sync of %d warnings < 1 s", in.warnings), "first "+ms(in.first), in.first < targetInitialSync,
			"(best "+ms(in.best)+")")
	}
	nb := nc.bytesOut + nc.bytesIn
	row("no-change sync < 200 B of bodies", fmt.Sprintf("%d B", nb), nb < targetNoChangeSync, "")
	row("warning put < 600 B msgpack", fmt.Sprintf("%d B (%d attempts)", r.warning.change, r.warning.attempts),
		r.warning.change < targetWarningPut, "")
	fmt.Fprintf(w, "%-46s %-26s %s\n", "server RSS < 200 MiB (1M warnings, 1000 dev.)", fmt.Sprintf("%.0f MiB", mib(r.mem.rss)),
		"NOT MEASURED at that scale: this run holds fewer warnings and devices, and the clients share the process")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
