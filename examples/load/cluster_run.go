package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/machine"
)

// Targets of issue 15.
const (
	targetClusterShare = 0.70
	targetFailover     = 3 * time.Second
)

// runCluster is -cluster: the same load (phones, batches, duration, fsync
// on) against one node, then against a three-node cluster on loopback,
// then against the cluster with its stores' fsync off (raft's log keeps
// its own), then the leader SIGKILLed -kills times.
func runCluster(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "fieldsync load, one node against a three-node cluster: %d devices, batches of %d ops, %v per phase, GOMAXPROCS %d, %s\n",
		cfg.devices, cfg.batch, cfg.duration, runtime.GOMAXPROCS(0), runtime.Version())
	var phases []*phase

	one, err := setup(ctx, cfg, "", stderr)
	if err != nil {
		return fmt.Errorf("one node: %w", err)
	}
	p, err := runPhase(ctx, cfg, "one node", one.devices, nil, stderr)
	one.close()
	if err != nil {
		return err
	}
	phases = append(phases, p)

	for _, fsmNoSync := range []bool{false, true} {
		name := "three nodes"
		if fsmNoSync {
			name = "three nodes, stores' fsync off"
		}
		e, _, err := setupCluster(ctx, cfg, fsmNoSync, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		p, err := runPhase(ctx, cfg, name, e.devices, nil, stderr)
		e.close()
		if err != nil {
			return err
		}
		phases = append(phases, p)
	}

	var fo *failoverResult
	if cfg.kills > 0 {
		fmt.Fprintf(stderr, "failover: %d kills of the leader of three fieldsyncd processes ...\n", cfg.kills)
		la := machine.LoadAverage()
		if fo, err = runFailover(ctx, cfg, stderr); err != nil {
			return fmt.Errorf("failover: %w", err)
		}
		fo.loadAvgBefore, fo.loadAvgAfter = la, machine.LoadAverage()
	}
	printCluster(stdout, phases, fo)
	return nil
}

// printCluster prints each phase, the cluster's throughput as a share of
// one node's, and the failover times, against issue 15's targets.
func printCluster(w io.Writer, phases []*phase, fo *failoverResult) {
	fmt.Fprintf(w, "\n== fieldsync load: one node against a three-node cluster (in-process nodes, loopback, fsync on unless said) ==\n")
	for _, p := range phases {
		l := p.res
		fmt.Fprintf(w, "%-32s %7.0f ops/s (%d ops in %.1f s)  push p50 %s p99 %s  pull p50 %s p99 %s  (%d pushes, %d errors)\n",
			p.name, opsPerSec(l), l.acked, l.wall.Seconds(),
			ms(percentile(l.pushLat, .5)), ms(percentile(l.pushLat, .99)),
			ms(percentile(l.pullLat, .5)), ms(percentile(l.pullLat, .99)), l.pushes, l.errors)
		fmt.Fprintf(w, "%-32s CPU of nodes and phones %.0f µs per acknowledged op; 1-min load average %s before, %s after\n",
			"", float64(p.cpu.Microseconds())/float64(max(1, l.acked)), p.loadAvgBefore, p.loadAvgAfter)
		if l.errors > 0 {
			fmt.Fprintf(w, "%-32s first error: %v\n", "", l.firstErr)
		}
	}
	one := opsPerSec(phases[0].res)
	for _, p := range phases[1:] {
		share := opsPerSec(p.res) / one
		fmt.Fprintf(w, "%-32s %.0f%% of one node's throughput (target >= %.0f%%): %s\n", p.name, 100*share, 100*targetClusterShare, verdict(share >= targetClusterShare))
	}
	if fo == nil {
		return
	}
	p50, worst := percentile(fo.times, .5), slices.Max(fo.times)
	fmt.Fprintf(w, "failover (3 fieldsyncd processes) leader SIGKILLed %d times: next acknowledged push after p50 %s, max %s (target < %v): %s; 1-min load average %s before, %s after\n",
		len(fo.times), ms(p50), ms(worst), targetFailover, verdict(worst < targetFailover), fo.loadAvgBefore, fo.loadAvgAfter)
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}
