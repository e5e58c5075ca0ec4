package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
)

// run is the program as its main runs it.
var run = cli.Command(parseFlags, runScenarios)

// TestRun runs the day of attempts and photos end to end, small and on a
// fast link: the setup's month of work, the SDK through the proxy, the
// server's count. It checks what is printed, never how long anything took.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server, a month of work and a phone behind a proxy")
	}
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-only", "2", "-scale", "0.05", "-speedup", "50", "-quiet"}, &out, &errOut)
	t.Logf("stdout:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"== 2. 2 attempts, 1 with a 10 KiB photo ==",
		"wall          ",
		"bytes         up ",
		"requests      ",
		"connections   ",
		"ratio         ",
		"server holds 2 of 2 attempts and 1 of 1 photos; 0 of them more than once",
		"| scenario | link | wall | up | down | requests | conns | cuts | ratio | target | verdict |",
		"| 2. 2 attempts, 1 with a 10 KiB photo | 3200 kbit/s, RTT 16ms, cut every 40 KB |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "did not complete") {
		t.Errorf("the scenario did not complete")
	}
}

// TestRun_Flags refuses bad settings before starting anything.
func TestRun_Flags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "6"},
		{"-only", "1,x"},
		{"-scale", "0"},
		{"-speedup", "0.5"},
		{"-outage", "0s"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
