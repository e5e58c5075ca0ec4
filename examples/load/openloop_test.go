package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// The open loop takes its own defaults for what the command line leaves
// out, and keeps what it gives.
func TestParseFlags_OpenLoop(t *testing.T) {
	cfg, err := parseFlags([]string{"-rates", "2000, 10000,20000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.rates, []int{2000, 10000, 20000}) || cfg.devices != openLoopDevices ||
		cfg.warningsPerDevice != openLoopWarnings || cfg.duration != openLoopDuration {
		t.Errorf("parsed rates %v, %d devices, %d warnings each, %v; want the open loop's defaults", cfg.rates, cfg.devices, cfg.warningsPerDevice, cfg.duration)
	}
	cfg, err = parseFlags([]string{"-rate", "500", "-devices", "50", "-warnings", "7", "-duration", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.rates, []int{500}) || cfg.devices != 50 || cfg.warningsPerDevice != 7 || cfg.duration != 3*time.Second {
		t.Errorf("parsed rates %v, %d devices, %d warnings each, %v; want what the command line gave", cfg.rates, cfg.devices, cfg.warningsPerDevice, cfg.duration)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil || len(cfg.rates) != 0 || cfg.devices != 200 {
		t.Errorf("no flag: rates %v, %d devices, %v; want the closed loop's 200", cfg.rates, cfg.devices, err)
	}
}

func TestParseFlags_OpenLoopRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-rate", "-5"},
		{"-rate", "100", "-rates", "100,200"},
		{"-rates", "100,x"},
		{"-rates", "100,0"},
		{"-rates", "100", "-cluster"},
		{"-rates", "100", "-through-nginx"},
		{"-rate", "100", "-ops-target"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) took it", args)
		}
	}
}

// A short open loop at two rates against a small city: every push due is
// answered and timed, and the report holds each phase and what the pushes
// wrote into bbolt.
func TestOpenLoop(t *testing.T) {
	cfg, err := parseFlags([]string{"-rates", "30,60", "-duration", "1s", "-batch", "5", "-devices", "3", "-warnings", "2",
		"-nochange-pulls", "2", "-township-warnings", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	rep, err := measureOpenLoop(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(rep.phases) != 2 {
		t.Fatalf("%d phases, want one per rate", len(rep.phases))
	}
	var acked int64
	for _, p := range rep.phases {
		if p.due == 0 || p.abandoned != 0 || p.errors != 0 || len(p.pushLat) != p.due || p.acked != int64(p.due*cfg.batch) {
			t.Errorf("at %d ops/s: %d pushes due, %d timed, %d ops acknowledged, %d abandoned, %d errors (%v); want every push answered",
				p.rate, p.due, len(p.pushLat), p.acked, p.abandoned, p.errors, p.firstErr)
		}
		if len(p.pullLat) < len(p.pushLat) {
			t.Errorf("at %d ops/s: %d pulls after %d pushes", p.rate, len(p.pullLat), len(p.pushLat))
		}
		q := []time.Duration{percentile(p.pushLat, .5), percentile(p.pushLat, .99), percentile(p.pushLat, .999), percentile(p.pushLat, 1)}
		if q[0] <= 0 || !slices.IsSorted(q) {
			t.Errorf("at %d ops/s: push p50, p99, p999, max %v", p.rate, q)
		}
		if p.wall < cfg.duration || p.achieved() <= 0 || p.diag == nil || p.diag.pageBytes <= 0 {
			t.Errorf("at %d ops/s: wall %v, achieved %.0f ops/s, diag %+v", p.rate, p.wall, p.achieved(), p.diag)
		}
		acked += p.acked
	}
	if got := rep.buckets.after["log"].Entries - rep.buckets.before["log"].Entries; got != acked {
		t.Errorf("the log grew by %d entries for %d ops acknowledged", got, acked)
	}
	if rep.buckets.acked != acked || rep.buckets.fileSize == 0 {
		t.Errorf("the bucket table counts %d ops and a file of %d B; want %d and its size", rep.buckets.acked, rep.buckets.fileSize, acked)
	}

	var out strings.Builder
	rep.print(&out)
	for _, want := range []string{"rate     30 ops/s  achieved", "rate     60 ops/s  achieved", "\n                  log ", "\n                  total ", "bbolt pages ", "store file "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
