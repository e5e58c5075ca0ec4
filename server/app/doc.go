// Package app is fieldsync's service layer: what the HTTP handlers call. It
// joins the store and the token issuer, checks who may call what, and knows
// nothing of HTTP. Every method returns *syncproto.Error for anything a
// client did wrong; other errors are the server's own and are logged, never
// sent.
package app
