package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testwait"
)

func TestParseFlags_Cluster(t *testing.T) {
	cfg, err := parseFlags([]string{"-cluster", "-kills", "3", "-fieldsyncd", "/tmp/fieldsyncd"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.cluster || cfg.kills != 3 || cfg.fieldsyncd != "/tmp/fieldsyncd" {
		t.Errorf("parsed %+v, want -cluster with 3 kills of /tmp/fieldsyncd", cfg)
	}
	// issue 15 asks for 10 kills; make bench runs the default.
	if cfg, err := parseFlags([]string{"-cluster"}, io.Discard); err != nil || cfg.kills != 10 {
		t.Errorf("-cluster alone: %v kills, %v; want 10", cfg != nil && cfg.kills == 10, err)
	}
}

func TestParseFlags_ClusterRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-cluster", "-through-nginx"},         // two runs
		{"-cluster", "-nosync"},                // the figures are of durable pushes
		{"-cluster", "-data", t.TempDir()},     // one store for four
		{"-cluster", "-ops-target"},            // the plain run's table
		{"-cluster", "-kills", "-1"},           // no such number
		{"-fieldsyncd", "/tmp/fieldsyncd"},     // for -cluster only
		{"-cluster", "-cpuprofile", "cpu.out"}, // the plain run's profile
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) took it", args)
		}
	}
}

// The cluster's setup: three nodes, the phones made through the leader
// and then spread over the three, a load phase whose every push is
// acknowledged, and the three stores at the same applied index after it.
func TestSetupCluster(t *testing.T) {
	cfg, err := parseFlags([]string{"-cluster", "-devices", "3", "-warnings", "2", "-nochange-pulls", "2", "-max-batches", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	e, c, err := setupCluster(context.Background(), cfg, false, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(e.close)
	if !c.nodes[0].Leads() || e.srv != c.srvs[0] {
		t.Error("the setup did not run on the leader")
	}
	var got []string
	for _, d := range e.devices {
		got = append(got, d.c.BaseURL)
	}
	if !slices.Equal(got, c.urls()) {
		t.Errorf("the phones go to %v, want one on each node %v", got, c.urls())
	}
	res, err := loadDevices(context.Background(), cfg, e.devices, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if want := int64(3 * 2 * cfg.batch); res.acked != want || res.errors != 0 {
		t.Errorf("%d ops acknowledged, %d errors; want %d and none", res.acked, res.errors, want)
	}
	testwait.Until(t, "the three stores at one applied index", func() bool {
		return c.srvs[0].Store.AppliedIndex() == c.srvs[1].Store.AppliedIndex() &&
			c.srvs[0].Store.AppliedIndex() == c.srvs[2].Store.AppliedIndex()
	})
}

// The report's verdicts: the cluster's share of one node's throughput
// against 70%, the worst failover against 3 s.
func TestPrintCluster(t *testing.T) {
	res := func(acked int64) *loadResult {
		return &loadResult{acked: acked, wall: 1e9, pushLat: []time.Duration{1}, pullLat: []time.Duration{1}}
	}
	var out strings.Builder
	printCluster(&out, []*phase{{name: "one node", res: res(1000)}, {name: "three nodes", res: res(800)}, {name: "three nodes, stores' fsync off", res: res(500)}},
		&failoverResult{times: []time.Duration{time.Second, 4 * time.Second, 2 * time.Second}})
	for _, want := range []string{
		"three nodes                      80% of one node's throughput (target >= 70%): PASS",
		"three nodes, stores' fsync off   50% of one node's throughput (target >= 70%): FAIL",
		"leader SIGKILLed 3 times: next acknowledged push after p50 2000.000 ms, max 4000.000 ms (target < 3s): FAIL",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// A failover is timed to the first answer to a push sent after the kill:
// a push sent before it and answered after it (its entry committed before
// the kill) says nothing of the new leader.
func TestAckLog_FirstSentAfter(t *testing.T) {
	kill := time.Unix(100, 0)
	at := func(s float64) time.Time { return kill.Add(time.Duration(s * float64(time.Second))) }
	var a ackLog
	if _, ok := a.firstSentAfter(kill); ok {
		t.Fatal("an empty log has an answer")
	}
	a.add(at(-0.5), at(0.01)) // sent before the kill
	if _, ok := a.firstSentAfter(kill); ok {
		t.Fatal("a push sent before the kill was taken")
	}
	a.add(at(0.2), at(2.5))
	a.add(at(1.0), at(1.8)) // sent later, answered first
	if got, ok := a.firstSentAfter(kill); !ok || !got.Equal(at(1.8)) {
		t.Errorf("first answer %v, %v; want %v", got, ok, at(1.8))
	}
}
