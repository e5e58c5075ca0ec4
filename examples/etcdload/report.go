package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// print writes the figures in the format of examples/load's results, so
// the two sit together in docs/BENCHMARKS.md.
func (r *result) print(w io.Writer) {
	c := r.cfg
	perRecord := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / float64(max(1, r.records))
	}
	fmt.Fprintf(w, "\n== etcd load results ==\n")
	fmt.Fprintf(w, "durable txn       %d records acknowledged in %.2f s = %.0f records/s (%d clients, txns of %d puts of %d B, etcd %s, one node, WAL fsync on)\n",
		r.records, r.wall.Seconds(), float64(r.records)/r.wall.Seconds(), c.clients, c.puts, c.valueBytes, r.version)
	fmt.Fprintf(w, "machine load      1-min load average %s before the load phase, %s after (other work on the machine skews every figure)\n", r.loadAvgBefore, r.loadAvgAfter)
	fmt.Fprintf(w, "CPU per record    etcd %.0f µs (%.2f cores); etcd and the clients %.0f µs (examples/load's CPU per op counts server and clients)\n",
		perRecord(r.etcdCPU), r.etcdCPU.Seconds()/r.wall.Seconds(), perRecord(r.etcdCPU+r.ownCPU))
	fmt.Fprintf(w, "disk              %d WAL fsyncs (%.1f txns each), %d backend commits\n",
		r.walFsyncs, float64(r.txns)/float64(max(1, r.walFsyncs)), r.backendCommits)
	if r.errors > 0 {
		fmt.Fprintf(w, "errors            %d failed requests (the client went on); first: %v\n", r.errors, r.firstErr)
	}
	fmt.Fprintf(w, "txn latency       p50 %s  p99 %s  max %s  (%d txns)\n",
		ms(percentile(r.txnLat, .5)), ms(percentile(r.txnLat, .99)), ms(percentile(r.txnLat, 1)), r.txns)
	what := "a range over the client's prefix above its last read's revision; etcd reads the whole prefix and filters"
	if c.read == readWritten {
		what = "a range over the keys just written"
	}
	fmt.Fprintf(w, "read latency      p50 %s  p99 %s  max %s  (%d reads, %.1f keys each: %s)\n",
		ms(percentile(r.readLat, .5)), ms(percentile(r.readLat, .99)), ms(percentile(r.readLat, 1)), r.reads,
		float64(r.readKeys)/float64(max(1, r.reads)), what)
}

// percentile returns the p-th quantile (0 to 1) of ds, nearest rank, as
// examples/load computes it.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
