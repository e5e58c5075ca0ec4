package netshape

import (
	"fmt"
	"time"
)

// Link is what the phone's radio link does to the bytes between the SDK
// and the server. The zero Link relays everything at once, untouched.
type Link struct {
	// DownBitsPerSec and UpBitsPerSec are the link's rates towards the
	// phone and towards the server; 0 is unlimited. All connections share
	// them, as the apps of one phone share its radio.
	DownBitsPerSec, UpBitsPerSec int

	// DownDelay and UpDelay are the one-way latencies; the round trip is
	// their sum. They do not slow the rate: chunks are in flight together.
	DownDelay, UpDelay time.Duration

	// CutAfter closes a connection once this many bytes, both directions
	// together, have been delivered on it: exactly this many, then both
	// sides see the connection closed. 0 never cuts. It models a link that
	// drops every N KB.
	CutAfter int64

	// LoseAnswers is the probability (0 to 1) that an answer is lost: when
	// data from the server starts after data from the phone was relayed on
	// a connection (a new HTTP response on a kept-alive connection), the
	// proxy closes both sides instead of relaying it. The server has done
	// the work; the phone sees the connection end without an answer.
	LoseAnswers float64

	// DropRate is the probability (0 to 1), per relayed chunk, that the
	// connection is reset there instead: a flaky link.
	DropRate float64

	// BlackHole is a link that vanished: connections are accepted and
	// read, but nothing is relayed in either direction and open
	// connections stall, neither progressing nor closing. When the link
	// comes back they go on, as TCP does after retransmitting.
	BlackHole bool

	// Refuse is no route at all: new connections are reset at once, and
	// open ones are reset when it is set.
	Refuse bool
}

// Validate reports a Link whose numbers mean nothing: a negative rate,
// delay or cut, or a probability outside 0 to 1.
func (l Link) Validate() error {
	switch {
	case l.DownBitsPerSec < 0 || l.UpBitsPerSec < 0:
		return fmt.Errorf("netshape: negative rate (down %d, up %d bit/s)", l.DownBitsPerSec, l.UpBitsPerSec)
	case l.DownDelay < 0 || l.UpDelay < 0:
		return fmt.Errorf("netshape: negative delay (down %v, up %v)", l.DownDelay, l.UpDelay)
	case l.CutAfter < 0:
		return fmt.Errorf("netshape: negative CutAfter %d", l.CutAfter)
	case !(l.LoseAnswers >= 0 && l.LoseAnswers <= 1):
		return fmt.Errorf("netshape: LoseAnswers %v is not a probability", l.LoseAnswers)
	case !(l.DropRate >= 0 && l.DropRate <= 1):
		return fmt.Errorf("netshape: DropRate %v is not a probability", l.DropRate)
	}
	return nil
}

// The presets are the 2G profiles of the Chrome and Firefox DevTools
// network throttling (kbit of 1024 bits; their latency is a round trip,
// split here evenly between the two directions), so a figure measured
// through netshape can be compared with one a web developer knows.

// GPRS is a GPRS link: 50 kbit/s down, 20 kbit/s up, 500 ms round trip.
func GPRS() Link {
	return Link{DownBitsPerSec: 50 * 1024, UpBitsPerSec: 20 * 1024, DownDelay: 250 * time.Millisecond, UpDelay: 250 * time.Millisecond}
}

// Regular2G is an ordinary 2G (EDGE) link: 250 kbit/s down, 50 kbit/s up,
// 300 ms round trip.
func Regular2G() Link {
	return Link{DownBitsPerSec: 250 * 1024, UpBitsPerSec: 50 * 1024, DownDelay: 150 * time.Millisecond, UpDelay: 150 * time.Millisecond}
}

// Good2G is a good 2G (EDGE) link: 450 kbit/s down, 150 kbit/s up, 150 ms
// round trip.
func Good2G() Link {
	return Link{DownBitsPerSec: 450 * 1024, UpBitsPerSec: 150 * 1024, DownDelay: 75 * time.Millisecond, UpDelay: 75 * time.Millisecond}
}
