package mobile

import (
	"context"
	"errors"
	"strings"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Error codes. Every error this package returns has a message that starts
// with one of them and ": ", so Java and Swift, which see only the message
// (an Exception or NSError), can branch with ErrorCode. The protocol's
// codes (PROTOCOL.md section 2) keep their names; the others are the
// phone's own.
const (
	// CodeInvalidRequest: a bad argument or op; do not retry unchanged.
	CodeInvalidRequest = syncproto.CodeInvalidRequest
	// CodeUnauthorized: wrong username or password, or the session ended.
	CodeUnauthorized = syncproto.CodeUnauthorized
	// CodeForbidden: signed in, but not allowed.
	CodeForbidden = syncproto.CodeForbidden
	// CodeNotFound: no such warning on this device, or no such op.
	CodeNotFound = syncproto.CodeNotFound
	// CodeDeviceRevoked: the server revoked this device; it may not sync
	// again. SyncStatus.Wiped says whether its data was deleted.
	CodeDeviceRevoked = syncproto.CodeDeviceRevoked
	// CodeRateLimited and CodeUnavailable: the server is busy; try later.
	CodeRateLimited = syncproto.CodeRateLimited
	CodeUnavailable = syncproto.CodeUnavailable
	// CodeUpgradeRequired: this app is too old for the server.
	CodeUpgradeRequired = syncproto.CodeUpgradeRequired
	// CodeInvalidState: the warning is not in a state the op applies to.
	CodeInvalidState = syncproto.CodeInvalidState
	// CodeTooManyDevices: Login was refused because the account is signed
	// in on the most devices the server allows. Show the message: it asks
	// the person to sign out on a device they no longer use, or to have an
	// administrator revoke it. Retrying unchanged does not help.
	CodeTooManyDevices = syncproto.CodeTooManyDevices
	// CodeWarningFull: a rejected op (Op.Code) that would have made the
	// warning too large: it holds the most attempts the server allows, or
	// the attempt's notes would take it past its size. Show Op.Message;
	// the township lead reviews the warning.
	CodeWarningFull = syncproto.CodeWarningFull
	// CodePhotoQuotaExceeded: the phone sent as many photo bytes today as
	// the server takes from one device (the start of SyncStatus.PhotoError).
	// The photos stay on the phone and go after midnight, Beijing time.
	CodePhotoQuotaExceeded = syncproto.CodePhotoQuotaExceeded

	// CodeNotLoggedIn: nobody is signed in on this device; show the login
	// screen.
	CodeNotLoggedIn = "not_logged_in"
	// CodeHandOverFirst: another user's unsent work is still on the device;
	// that user must sync (or hand it over) before someone else logs in.
	CodeHandOverFirst = "hand_over_first"
	// CodeWrongKey: the local data was sealed with another key (the
	// keystore entry was lost or replaced). The data cannot be read; the
	// app may delete the folder and start again.
	CodeWrongKey = "wrong_key"
	// CodeNetwork: the server could not be reached; nothing is lost, sync
	// again later.
	CodeNetwork = "network"
	// CodeTimeout: the call took longer than its time limit.
	CodeTimeout = "timeout"
	// CodeClosed: the Client was closed.
	CodeClosed = "closed"
	// CodeInternal: anything else (a local file error, say).
	CodeInternal = syncproto.CodeInternal
)

// codedError is every error the facade returns.
type codedError struct {
	code string
	msg  string
	err  error
}

func (e *codedError) Error() string { return e.code + ": " + e.msg }
func (e *codedError) Unwrap() error { return e.err }

func newError(code, msg string) error { return &codedError{code: code, msg: msg} }

// wrap gives err its code. The message is the protocol's sentence when the
// error came from the server, else the SDK's own text.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	code := classify(err)
	msg := err.Error()
	if pe := syncproto.AsError(err); pe != nil {
		// "403 forbidden: sentence" from the remote client becomes
		// "sentence"; the SDK's context around it stays.
		var se *remote.StatusError
		if errors.As(err, &se) {
			msg = strings.Replace(msg, se.Error(), pe.Error(), 1)
		}
		if pe.Code == code && pe.Message != "" {
			msg = strings.Replace(msg, pe.Error(), pe.Message, 1)
		}
	}
	msg = strings.TrimPrefix(msg, code+": ")
	return &codedError{code: code, msg: msg, err: err}
}

func classify(err error) string {
	switch {
	case errors.Is(err, clientsdk.ErrStalled):
		// Before the context checks: a stalled request's context is
		// cancelled by the SDK, not by Close.
		return CodeNetwork
	case errors.Is(err, clientsdk.ErrNotLoggedIn):
		return CodeNotLoggedIn
	case errors.Is(err, clientsdk.ErrRevoked):
		return CodeDeviceRevoked
	case errors.Is(err, clientsdk.ErrHandOverFirst):
		return CodeHandOverFirst
	case errors.Is(err, localstore.ErrWrongKey):
		return CodeWrongKey
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeClosed
	}
	if pe := syncproto.AsError(err); pe != nil {
		return pe.Code
	}
	if clientsdk.Transient(err) {
		return CodeNetwork
	}
	return CodeInternal
}

// ErrorCode returns the code of an error this package returned: one of the
// Code constants, "" for nil. It reads the code from the message, so it
// works on the error Java or Swift hands back (only its message crosses the
// binding). An error from elsewhere gives CodeInternal.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	code, _, ok := strings.Cut(err.Error(), ": ")
	if ok && code != "" && strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") == "" {
		return code
	}
	return CodeInternal
}

// ErrorMessage is the sentence of an error without its code, to show the
// person.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.msg
	}
	msg := err.Error()
	if code := ErrorCode(err); code != CodeInternal || strings.HasPrefix(msg, CodeInternal+": ") {
		return strings.TrimPrefix(msg, code+": ")
	}
	return msg
}

// Retryable says whether the same call may succeed later as it is: the
// network was down, the call timed out, or the server was busy.
func Retryable(err error) bool {
	switch ErrorCode(err) {
	case CodeNetwork, CodeTimeout, CodeUnavailable, CodeRateLimited:
		return true
	}
	return false
}
