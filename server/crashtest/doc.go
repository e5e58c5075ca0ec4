// Package crashtest holds the crash-safety test of fieldsyncd: it runs the
// real server binary as a child process, pushes from many simulated devices
// at once, kills the server with SIGKILL at random moments, restarts it, and
// then reads the bbolt file directly to check that every acknowledged op is
// in the log exactly once, that no batch is half there, that log seqs and
// each device's client_seqs have no gaps, that warning state holds exactly
// the logged attempts, and that bbolt's own consistency check passes.
//
// The package has no code of its own; the test is in crash_test.go.
package crashtest
