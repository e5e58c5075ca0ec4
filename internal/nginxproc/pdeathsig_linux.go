package nginxproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent has the kernel kill cmd's process if the program that
// started it dies without stopping it (a panic, a test's -timeout, a
// SIGKILL), so no nginx or server outlives it. The province test uses it
// for its cities' fieldsyncd processes too.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
