// Package clientsdk is what a phone app embeds to work with fieldsync
// offline: a local store sealed with the app's key, an outbox of what the
// person did, and a sync engine that pushes the outbox in order and pulls
// the changes in the user's scope.
//
// Writes return at once and never wait for the network: each becomes an op
// with a client_seq, shown on top of the last pulled state by the same
// syncproto.Apply the server runs, and visible as pending, sent, applied or
// rejected. Sync resumes after any failure; every transient error is
// retried with exponential backoff and jitter; a rejected op is kept for
// the person and never blocks the ones after it.
//
// An op leaves the outbox when a pull confirms the server applied it, and
// goes, in the same local transaction, to a journal kept for
// Options.JournalRetention (14 days) and at most Options.JournalMax ops
// (5,000). A server restored from a backup holds fewer of the device's ops
// than it confirmed: its last_client_seq, in a 409 out_of_order or a pull,
// is below the journal's newest op. Then the journal's ops above it go back
// in front of the outbox, numbered again from last_client_seq+1, and are
// sent once more: a restore of a backup taken within the journal's window
// loses nothing the server acknowledged. No other reset sends anything
// again; a new user and a revocation clear the journal.
//
// It is made for 2G links (50-64 kbit/s, 800-1500 ms round trips, drops
// every few seconds): a request fails only when no byte moves for
// Options.StallTimeout, never for being slow; pull pages are sized in bytes
// to the link it measures (Options.PageTime), and each page applied stays;
// a sync goes in lanes (ops out, changes in, then photos) so a new warning
// never waits behind photos; photos go by resumable upload (tus) in pieces
// sized to the link; connections are kept and TLS sessions resumed. In the
// foreground (SetForeground) background sync waits for new work by long
// poll (Poll); NetworkAvailable ends its backoff when the platform says the
// network is back, and the requests stuck on the old network's connections.
// A county or city lead's phone pulls warnings as summaries (attempts
// without their notes, places and photos: half the bytes), and
// FetchWarning brings one whole when the lead opens it (Options.PullDetail).
//
// After a push is acknowledged, the phone computes the state the server
// made of its ops on each warning (ExpectedState: the same rules, the op's
// result version and the push's received_at) and offers its hash in the
// next pull's have; the server leaves out the puts that match (kept), and
// the phone installs its own state for them in the same transaction as
// the page. Those states are kept in memory only: a restart costs their
// bytes on the link, never a state (PROTOCOL.md section 4).
//
// A city's cluster is several addresses of one server (Options.ServerURLs):
// a request that gets no answer at one (refused, reset, stalled, or 502,
// 503 or 504) goes at once to the next, with the same token, cursor and
// client_seqs, so a move resets nothing, and the server's dedupe of
// client_seqs makes a push sent again at the next address apply once. The
// address that answered last is kept in the local store, beside the
// cursor, and the next Open starts there: an app restarted often (as
// phones do) would otherwise wait at every start on a node that is down,
// up to ConnectTimeout or StallTimeout on a black hole. A photo's upload
// made at one address is asked for at the next under the same path (HEAD)
// and resumed from what the server holds there; where the node does not
// know it (404) a new one is made, after the next pull (see
// docs/PROTOCOL.md, sections 1 and 6a).
//
// The package is plain Go. client-sdk/mobile wraps it in types gomobile can
// bind for Android and iOS.
package clientsdk
