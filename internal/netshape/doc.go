// Package netshape is a TCP proxy that makes a loopback connection behave
// like a village cadre's phone on a rural 2G/EDGE link, so tests and
// benchmarks can drive the real server and the real SDK through the link
// they will meet: slow, far away, cutting out, losing answers after the
// server has done the work, vanishing and coming back.
//
//	p, err := netshape.Listen(srvAddr, netshape.Regular2G(), 1)
//	...
//	rc := remote.New(p.URL())                 // the SDK talks to the proxy
//	p.SetLink(netshape.Link{BlackHole: true}) // the phone leaves coverage
//	p.Stats()                                 // exact bytes, cuts, lost answers
//
// # How a byte travels
//
// Each direction of each connection has a reader and a writer goroutine.
// The reader reads a chunk of at most 512 bytes, books its sending on the
// direction's scheduler, and queues it stamped with its delivery time: the
// end of its sending plus the one-way delay. The writer sleeps until the
// chunk is due and writes it. Sending is serial and shared by every
// connection in the direction, as one radio is; delay is not, so many
// chunks are in flight at once and the round trip does not lower the rate.
// A reader books its next chunk only while its previous one is being sent,
// so connections take turns on the radio and the rest of what the sender
// wrote waits in the kernel's socket buffers, pushing back on it.
//
// A reader's EOF travels as a half-close (CloseWrite) after the delay, so
// HTTP works as over a real link.
//
// # Faults
//
// The Link's faults are decided when a chunk is read and happen when it
// would have been delivered, after everything before it: CutAfter stops
// admitting bytes at exactly its budget and closes the connection when the
// last of them is written; LoseAnswers closes the connection in place of
// an answer's first chunk (an answer is recognised as HTTP/1.1 has them:
// the server's bytes after the client's; HTTP/2's pings and window updates
// would count too); DropRate resets it in place of a chunk. Random
// choices come from generators seeded by the Proxy's seed and the
// connection's number, one stream per purpose, so the same run of
// connections meets the same faults. Beware that net/http's Transport
// resends an idempotent request (GET, or one with an Idempotency-Key
// header) whose kept-alive connection ended before any answer: a lost
// answer to a GET is often retried without the caller knowing, which
// Stats shows as an extra request.
//
// BlackHole holds every chunk, event and new connection until the link
// is back; Refuse resets connections instead.
//
// Counts are exact and taken before what they count can be observed; see
// Stats. Time is the real clock: the proxy shapes real sockets, so unlike
// the store and the SDK it has no injected clock, and tests may assert
// only lower bounds on how long a transfer takes.
package netshape
