package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestLoad_Have: phones that send have pull none of the states their
// pushes made (each is kept), and phones that do not pull every one.
func TestLoad_Have(t *testing.T) {
	for _, tc := range []struct {
		flag       string
		kept, sent bool
	}{{"-have=true", true, false}, {"-have=false", false, true}} {
		t.Run(tc.flag, func(t *testing.T) {
			cfg, err := parseFlags([]string{tc.flag, "-duration", "10m", "-max-batches", "3", "-batch", "4", "-devices", "2",
				"-warnings", "3", "-nochange-pulls", "2", "-township-warnings", "0"}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			e, err := setup(context.Background(), cfg, "", &log)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			defer e.close()
			res, err := e.runLoad(context.Background(), &log)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			// 3 warnings a phone, 4 ops a push: one warning gets two
			// ops of a push, computed as one chain.
			pushes := int64(cfg.devices * cfg.maxBatches)
			if res.errors != 0 || res.acked != pushes*int64(cfg.batch) {
				t.Fatalf("%d ops acknowledged, %d errors (%v)", res.acked, res.errors, res.firstErr)
			}
			wantKept, wantSent := int64(0), int64(0)
			if tc.kept {
				wantKept = pushes * 3
			} else {
				wantSent = pushes * 3
			}
			if res.kept != wantKept || res.pulledChanges != wantSent {
				t.Errorf("pulls kept %d and carried %d changes; want %d and %d", res.kept, res.pulledChanges, wantKept, wantSent)
			}
		})
	}
}
