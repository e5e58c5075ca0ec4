// Package soak sizes the project's long randomized tests: the convergence
// rounds, the kills of the crash tests and the seeds of the compaction
// stress. make test runs them at the size that finds their bugs in a few
// minutes; make soak sets FIELDSYNC_SOAK to a factor and runs them that many
// times longer, with the same checks.
package soak

import (
	"fmt"
	"os"
	"strconv"
)

// Factor is FIELDSYNC_SOAK: how many times its usual size a soaked test
// runs. It is 1 when the variable is unset, and panics on a value that is
// not a whole number from 1 to 1000, so a typo cannot pass for a soak.
func Factor() int {
	s := os.Getenv("FIELDSYNC_SOAK")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		panic(fmt.Sprintf("FIELDSYNC_SOAK=%q: want a whole number from 1 to 1000", s))
	}
	return n
}

// Scale is n times Factor.
func Scale(n int) int {
	return n * Factor()
}
