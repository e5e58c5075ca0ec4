// Package clustertest holds the test of a city's cluster as operators live
// it: three fieldsyncd child processes on loopback, raft traffic between
// each pair through a user-space proxy per direction that can drop it
// (internal/netshape), phones on the real SDK pushing and pulling through
// any node, the leader SIGKILLed at random moments and restarted, a
// follower cut off and healed, a follower's data directory wiped and the
// node rejoined from a snapshot. It then reads the three stores' files and
// checks every acknowledged op is in every node's log once, the stores are
// identical, no phone was reset and every phone holds the server's state;
// and it checks the history of the phones' syncs is linearizable for each
// warning's version with porcupine.
//
// The package has no code of its own; the test is in its _test files.
package clustertest
