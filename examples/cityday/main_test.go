package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
)

// run is the program as its main runs it.
var run = cli.Command(parseFlags, simulate)

// TestRun simulates a short day with a few phones and requires every
// figure of the statistics API to equal the simulation's own count.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and 49 SDK clients")
	}
	ctx := t.Context()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"-phones", "20", "-warnings", "120", "-duration", "3s", "-rounds", "20", "-workers", "16"}, &out, &errOut)
	t.Logf("stdout:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"120 warnings in the morning feed; 20 phones, 28 leads",
		"GET /v1/stats?from=",
		"PASS  the ledger of applied ops matches each warning the center holds",
		"PASS  every phone and lead holds exactly its scope",
		", 0 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("output has a FAIL")
	}
	if !strings.Contains(errOut.String(), "settling, pass 2") {
		t.Errorf("progress on stderr lacks the settling passes:\n%s", errOut.String())
	}
}

// TestRun_Flags refuses bad settings before starting anything.
func TestRun_Flags(t *testing.T) {
	for _, args := range [][]string{
		{"-phones", "-1"},
		{"-warnings", "0"},
		{"-duration", "0s"},
		{"-offline", "1.5"},
		{"-rounds", "0"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
