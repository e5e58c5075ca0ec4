package main

import (
	"fmt"
	"io"
	"time"
)

// printPhases prints each phase of -through-nginx, then the proxy's cost
// per request: the phase through nginx against the same two partitions
// direct (only the proxy differs), and against one partition direct (what
// an operator compares with before splitting a province).
func printPhases(w io.Writer, phases []*phase) {
	fmt.Fprintf(w, "\n== fieldsync load: partitions through nginx ==\n")
	for _, p := range phases {
		l := p.res
		fmt.Fprintf(w, "%-30s %7.0f ops/s (%d ops in %.1f s)  push p50 %s p99 %s  pull p50 %s p99 %s  (%d pushes, %d pulls, %d errors)\n",
			p.name, opsPerSec(l), l.acked, l.wall.Seconds(),
			ms(percentile(l.pushLat, .5)), ms(percentile(l.pushLat, .99)),
			ms(percentile(l.pullLat, .5)), ms(percentile(l.pullLat, .99)), l.pushes, l.pulls, l.errors)
		fmt.Fprintf(w, "%-30s CPU of servers and phones %.0f µs per request", "", perRequest(p.cpu, l))
		if p.nginxCPU > 0 {
			fmt.Fprintf(w, ", of nginx %.0f µs per request (%.2f of a core)", perRequest(p.nginxCPU, l), p.nginxCPU.Seconds()/l.wall.Seconds())
		}
		fmt.Fprintf(w, "; 1-min load average %s before, %s after\n", p.loadAvgBefore, p.loadAvgAfter)
		if l.errors > 0 {
			fmt.Fprintf(w, "%-30s first error: %v\n", "", l.firstErr)
		}
	}
	if len(phases) < 3 {
		return
	}
	one, nginx, two := phases[0], phases[1], phases[2]
	fmt.Fprintf(w, "proxy's cost per request (other work on the machine skews every figure):\n")
	cost(w, "nginx vs the same two direct", nginx.res, two.res)
	cost(w, "nginx vs one partition direct", nginx.res, one.res)
}

// cost prints how much slower, per request, a is than b: the latency
// difference at p50 and p99 of pushes and pulls, and the throughput ratio.
func cost(w io.Writer, name string, a, b *loadResult) {
	diff := func(x, y []time.Duration, q float64) string {
		return fmt.Sprintf("%+.3f ms", float64(percentile(x, q)-percentile(y, q))/float64(time.Millisecond))
	}
	fmt.Fprintf(w, "  %-30s push p50 %s p99 %s  pull p50 %s p99 %s  throughput x%.2f\n", name,
		diff(a.pushLat, b.pushLat, .5), diff(a.pushLat, b.pushLat, .99),
		diff(a.pullLat, b.pullLat, .5), diff(a.pullLat, b.pullLat, .99),
		opsPerSec(a)/opsPerSec(b))
}

func opsPerSec(l *loadResult) float64 { return float64(l.acked) / l.wall.Seconds() }

// perRequest is d spread over the phase's pushes and pulls, in µs.
func perRequest(d time.Duration, l *loadResult) float64 {
	return float64(d.Microseconds()) / float64(max(1, l.pushes+l.pulls))
}
