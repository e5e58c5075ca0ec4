// Package httpapi serves fieldsync's protocol over HTTP with echo. Handlers
// are thin: decode the body in the negotiated codec, call the service, encode
// the answer. One error handler turns every error into the protocol's
// envelope; internal causes are logged and never sent.
//
// Open listens as Config.Listen says: plain HTTP, or TLS with HTTP/2 and a
// certificate that ReloadCertificate swaps without a restart; timeouts and a
// cap on open connections. Drain turns /v1/readyz to 503 before Close.
package httpapi
