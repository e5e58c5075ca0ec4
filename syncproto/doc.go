// Package syncproto is fieldsync's wire protocol as Go, and the domain rules
// that both the server and the SDK run.
//
// It holds the wire types of PROTOCOL.md (push, pull, auth, feed, admin), the
// JSON and MessagePack codecs with content negotiation, the error type and its
// codes, the opaque pull cursor, the unit tree and roles, and the pure Apply
// function that moves a warning through its states and raises conflict flags.
//
// It also holds the server's rules, written once so that each question has
// one answer (policy.go, stats.go, day.go): who may read a warning
// (CanRead), what the server does with a pushed op around Apply
// (ApplyPushed), what the statistics count (Counts, Contribution) and what
// a day is (a Beijing day, DayOf). They are pure too; the store calls them
// inside its transactions and keeps only the reads and writes.
//
// The server's order of ops is authoritative; the SDK runs the same Apply to
// show pending ops on top of the last state it pulled. Because both sides run
// this one function, what a cadre sees offline is what the server will decide.
//
// The package imports only the standard library and msgpack.
package syncproto
