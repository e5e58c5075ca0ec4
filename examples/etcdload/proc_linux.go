package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill etcd if this program dies without
// stopping it (a panic, a SIGKILL), so no etcd outlives a run. The main
// module's internal/childproc does the same; this module cannot import it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
