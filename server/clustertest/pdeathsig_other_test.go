//go:build unix && !linux

package clustertest_test

import "os/exec"

// dieWithParent does nothing where the kernel has no parent-death signal;
// the test's cleanups still kill the server.
func dieWithParent(*exec.Cmd) {}
