// Package hashcost holds the argon2id cost of new password hashes. It is
// internal to server/auth so that only package auth, which reads it, and
// package authtest, which lowers it inside test binaries, can reach it:
// nothing a production binary links can select a cheaper cost.
package hashcost

import "sync/atomic"

// Params are the argon2id cost parameters of one hash.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the number of lanes.
	Threads uint8
}

// Production is OWASP's minimum for argon2id: 19 MiB, two passes, one
// lane; about 45 ms on one core of a small server.
var Production = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

var current atomic.Pointer[Params]

// Current returns the parameters new hashes use: Production unless a test
// binary lowered them with Set.
func Current() Params {
	if p := current.Load(); p != nil {
		return *p
	}
	return Production
}

// Set makes new hashes use p until the process ends.
func Set(p Params) {
	current.Store(&p)
}
