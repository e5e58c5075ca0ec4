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
// The package is plain Go. client-sdk/mobile wraps it in types gomobile can
// bind for Android and iOS.
package clientsdk
