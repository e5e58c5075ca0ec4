// Package httpapi serves fieldsync's protocol over HTTP with echo. Handlers
// are thin: decode the body in the negotiated codec, call the service, encode
// the answer. One error handler turns every error into the protocol's
// envelope; internal causes are logged and never sent.
package httpapi
