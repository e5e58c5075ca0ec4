package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/server/store"
)

// diag is where the load phase's time went, to tell a CPU-bound run from
// one waiting on the disk or on the scheduler.
type diag struct {
	wall          time.Duration
	cpu           time.Duration // user + system time of the process
	diskWrite     time.Duration // bbolt: writing pages and meta, with fsync
	spill         time.Duration // bbolt: turning nodes into pages at commit
	pagesWritten  int64
	pageBytes     int64 // of the pages written, overflow pages included
	gcCycles      uint32
	gcPause       time.Duration
	schedP50      time.Duration // time goroutines waited runnable
	schedP99      time.Duration
	schedMeasured bool
}

type diagSnapshot struct {
	at    time.Time
	cpu   time.Duration
	db    store.CommitStats
	gc    runtime.MemStats
	sched *metrics.Float64Histogram
}

const schedMetric = "/sched/latencies:seconds"

func snapshot(st *store.Store) *diagSnapshot {
	s := &diagSnapshot{at: time.Now(), db: st.CommitStats()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	runtime.ReadMemStats(&s.gc)
	sample := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindFloat64Histogram {
		h := sample[0].Value.Float64Histogram()
		s.sched = &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
	}
	return s
}

func diff(a, b *diagSnapshot) *diag {
	d := &diag{
		wall:         b.at.Sub(a.at),
		cpu:          b.cpu - a.cpu,
		diskWrite:    b.db.WriteTime - a.db.WriteTime,
		spill:        b.db.SpillTime - a.db.SpillTime,
		pagesWritten: b.db.PagesWritten - a.db.PagesWritten,
		pageBytes:    b.db.PageBytes - a.db.PageBytes,
		gcCycles:     b.gc.NumGC - a.gc.NumGC,
		gcPause:      time.Duration(b.gc.PauseTotalNs - a.gc.PauseTotalNs),
	}
	if a.sched != nil && b.sched != nil && len(a.sched.Counts) == len(b.sched.Counts) {
		counts := make([]uint64, len(b.sched.Counts))
		var total uint64
		for i := range counts {
			counts[i] = b.sched.Counts[i] - a.sched.Counts[i]
			total += counts[i]
		}
		if total > 0 {
			d.schedMeasured = true
			d.schedP50 = histQuantile(counts, b.sched.Buckets, total, 0.50)
			d.schedP99 = histQuantile(counts, b.sched.Buckets, total, 0.99)
		}
	}
	return d
}

// histQuantile returns the upper bound of the bucket holding quantile q.
func histQuantile(counts []uint64, buckets []float64, total uint64, q float64) time.Duration {
	want := uint64(q * float64(total))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen > want {
			return time.Duration(buckets[i+1] * float64(time.Second))
		}
	}
	return time.Duration(buckets[len(buckets)-1] * float64(time.Second))
}

func (d *diag) print(w io.Writer) {
	cores := d.cpu.Seconds() / d.wall.Seconds()
	fmt.Fprintf(w, "where time went   process CPU %.1f s in %.1f s = %.2f of %d cores; bbolt disk write+fsync %.1f s (%.0f%% of wall), spill %.1f s, %d pages written\n",
		d.cpu.Seconds(), d.wall.Seconds(), cores, runtime.NumCPU(), d.diskWrite.Seconds(), 100*d.diskWrite.Seconds()/d.wall.Seconds(), d.spill.Seconds(), d.pagesWritten)
	fmt.Fprintf(w, "                  GC %d cycles, %.0f ms of pauses", d.gcCycles, float64(d.gcPause)/1e6)
	if d.schedMeasured {
		fmt.Fprintf(w, "; goroutines waited runnable p50 %s p99 %s", ms(d.schedP50), ms(d.schedP99))
	}
	fmt.Fprintln(w)
}
