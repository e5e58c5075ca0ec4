// Package childproc holds what programs and tests that start child
// processes (nginx, fieldsyncd) share.
package childproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent has the kernel kill cmd's process if the program that
// started it dies without stopping it (a panic, a test's -timeout, a
// SIGKILL), so no nginx or server outlives it.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
