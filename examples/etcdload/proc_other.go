//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel has no parent-death signal;
// the program's own stop still ends etcd.
func dieWithParent(*exec.Cmd) {}
