package main

import (
	"context"
	"errors"
	"io"
	"testing"
)

// Help asked for is no failure: `fieldsyncd demo --help` exits 0, as do
// the other commands' -h; an unknown command or flag exits 1.
func TestExitCode_HelpIsSuccess(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"demo", "--help"}, 0},
		{[]string{"serve", "-h"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"demo", "--no-such-flag"}, 1},
		{[]string{"no-such-command"}, 1},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if got := exitCode(err); got != tc.want {
			t.Errorf("fieldsyncd %v: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
	if exitCode(errors.New("disk full")) != 1 || exitCode(nil) != 0 {
		t.Fatal("exitCode of a failure or a success is wrong")
	}
}
