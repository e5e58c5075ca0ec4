//go:build !linux

package childproc

import "os/exec"

// DieWithParent does nothing where the kernel has no parent-death signal;
// the program's own Close or cleanups still stop the process.
func DieWithParent(*exec.Cmd) {}
