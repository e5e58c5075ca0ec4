//go:build !unix

package main

// lockFile does nothing where flock is missing: two runs of an admin tool
// sharing a state file at once may then end its session (BACKUP.md).
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
