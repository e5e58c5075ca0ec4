// Package nginxproc runs a real nginx as a child process on loopback, for
// the province test (server/provincetest) and the load program's
// -through-nginx mode (examples/load): find the binary where Debian puts
// it, run it without root on a configuration made by server/province
// (its Standalone form), wait until it answers, and stop it.
//
// nginx runs as one process (master_process off), so the kernel's
// parent-death signal ends all of it if the program that started it dies.
package nginxproc
