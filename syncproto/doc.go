// Package syncproto is fieldsync's wire protocol as Go, and the domain rules
// that both the server and the SDK run.
//
// It holds the wire types of PROTOCOL.md (push, pull, auth, feed, admin), the
// JSON and MessagePack codecs with content negotiation, the error type and its
// codes, the opaque pull cursor, the unit tree and roles, and the pure Apply
// function that moves a warning through its states and raises conflict flags.
//
// The server's order of ops is authoritative; the SDK runs the same Apply to
// show pending ops on top of the last state it pulled. Because both sides run
// this one function, what a cadre sees offline is what the server will decide.
//
// The package imports only the standard library and msgpack.
package syncproto
