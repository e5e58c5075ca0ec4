package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/netshape"
)

// ratioTarget is the most a transfer of over ratioFloor bytes may take,
// as a multiple of its bytes at the link's rate: round trips, handshakes
// and retries after cuts may cost 30% more than the bytes.
const (
	ratioTarget = 1.3
	ratioFloor  = 100_000
)

// result is one scenario's figures and verdict.
type result struct {
	id, title string
	link      netshape.Link
	wall      time.Duration
	stats     netshape.Stats
	reqs      requests
	// done: the scenario completed; failures say which target it missed,
	// and why when known.
	done     bool
	failures []string
	// target is the scenario's own target in words; lines are its
	// further figures.
	target string
	lines  []string
	// noRatio: the wall time is not a transfer (scenario 5 measures a
	// wait), so the ratio means nothing.
	noRatio bool
}

func (r *result) line(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// ratio is the wall time over the time the dominant direction's bytes
// take at the link's rate, that direction, and its bytes.
func (r *result) ratio() (float64, string, int64) {
	up, down := transferTime(r.stats.BytesUp, r.link.UpBitsPerSec), transferTime(r.stats.BytesDown, r.link.DownBitsPerSec)
	dir, bytes, t := "down", r.stats.BytesDown, down
	if up > down {
		dir, bytes, t = "up", r.stats.BytesUp, up
	}
	if t <= 0 {
		return 0, dir, bytes
	}
	return r.wall.Seconds() / t.Seconds(), dir, bytes
}

func transferTime(bytes int64, bitsPerSec int) time.Duration {
	if bitsPerSec <= 0 {
		return 0
	}
	return time.Duration(float64(bytes*8) / float64(bitsPerSec) * float64(time.Second))
}

// judge adds the ratio target to the scenario's own.
func (r *result) judge() {
	if !r.done {
		return
	}
	if q, dir, n := r.ratio(); !r.noRatio && n > ratioFloor && q >= ratioTarget {
		r.fail("wall time is %.2f times the %s bytes at the link's rate (target under %.1f)", q, dir, ratioTarget)
	}
}

func (r *result) pass() bool { return r.done && len(r.failures) == 0 }

func (r *result) verdict() string {
	if r.pass() {
		return "PASS"
	}
	return "FAIL"
}

func (r *result) print(w io.Writer) {
	r.judge()
	fmt.Fprintf(w, "\n== %s. %s ==\n", r.id, r.title)
	fmt.Fprintf(w, "link          %s\n", linkString(r.link))
	fmt.Fprintf(w, "wall          %s\n", seconds(r.wall))
	fmt.Fprintf(w, "bytes         up %s, down %s (the proxy's count: headers, bodies, resent bytes)\n", kb(r.stats.BytesUp), kb(r.stats.BytesDown))
	fmt.Fprintf(w, "requests      %s\n", r.reqs)
	fmt.Fprintf(w, "connections   %d, cuts %d\n", r.stats.Conns, r.stats.Cuts)
	if q, dir, n := r.ratio(); !r.noRatio && q > 0 {
		note := fmt.Sprintf("target under %.1f", ratioTarget)
		if n <= ratioFloor {
			note = "not held to a target: under 100 KB, round trips dominate"
		}
		fmt.Fprintf(w, "ratio         %.2f: wall time over %s, the time of %s %s at %s (%s)\n", q, seconds(transferTime(n, rate(r.link, dir))), kb(n), dir, kbits(rate(r.link, dir)), note)
	}
	for _, l := range r.lines {
		fmt.Fprintf(w, "              %s\n", l)
	}
	fmt.Fprintf(w, "target        %s\n", r.target)
	fmt.Fprintf(w, "verdict       %s", r.verdict())
	if !r.done {
		fmt.Fprintf(w, ": did not complete")
	}
	if len(r.failures) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(r.failures, "; "))
	}
	fmt.Fprintln(w)
}

// printTable prints every scenario in one Markdown table, for
// docs/BENCHMARKS.md.
func printTable(w io.Writer, rs []*result) {
	fmt.Fprintf(w, "\n== summary ==\n\n")
	fmt.Fprintln(w, "| scenario | link | wall | up | down | requests | conns | cuts | ratio | target | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		q, _, n := r.ratio()
		ratio := "-"
		switch {
		case r.noRatio:
		case n > ratioFloor:
			ratio = fmt.Sprintf("%.2f", q)
		case q > 0:
			ratio = fmt.Sprintf("(%.2f)", q)
		}
		fmt.Fprintf(w, "| %s. %s | %s | %s | %s | %s | %d | %d | %d | %s | %s | %s |\n",
			r.id, r.title, linkString(r.link), seconds(r.wall), kb(r.stats.BytesUp), kb(r.stats.BytesDown),
			r.reqs.total, r.stats.Conns, r.stats.Cuts, ratio, r.target, r.verdict())
	}
}

func rate(l netshape.Link, dir string) int {
	if dir == "up" {
		return l.UpBitsPerSec
	}
	return l.DownBitsPerSec
}

func linkString(l netshape.Link) string {
	s := kbits(l.DownBitsPerSec)
	if l.UpBitsPerSec != l.DownBitsPerSec {
		s += " down, " + kbits(l.UpBitsPerSec) + " up"
	}
	s += fmt.Sprintf(", RTT %v", (l.DownDelay + l.UpDelay).Round(time.Millisecond))
	if l.CutAfter > 0 {
		s += fmt.Sprintf(", cut every %d KB", l.CutAfter/1000)
	}
	return s
}

func kbits(bitsPerSec int) string {
	if bitsPerSec%1000 == 0 {
		return fmt.Sprintf("%d kbit/s", bitsPerSec/1000)
	}
	return fmt.Sprintf("%.1f kbit/s", float64(bitsPerSec)/1000)
}

func kb(n int64) string {
	if n < 10_000 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1000)
}

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
