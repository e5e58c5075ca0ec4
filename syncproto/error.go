package syncproto

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"time"
)

// Error codes of PROTOCOL.md section 2, plus the rejection codes of section 6.
const (
	CodeInvalidRequest      = "invalid_request"
	CodeUnsupportedProtocol = "unsupported_protocol"
	CodeUnauthorized        = "unauthorized"
	CodeTokenExpired        = "token_expired"
	CodeDeviceRevoked       = "device_revoked"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodePayloadTooLarge     = "payload_too_large"
	CodeOutOfOrder          = "out_of_order"
	CodeCursorExpired       = "cursor_expired"
	CodeRateLimited         = "rate_limited"
	CodeUpgradeRequired     = "upgrade_required"
	CodeUnavailable         = "unavailable"
	// CodeTooManyDevices refuses a sign-in when the account is signed in
	// on the most devices the server allows: an extension (PROTOCOL.md
	// section 2); the message says what the person can do.
	CodeTooManyDevices = "too_many_devices"
	// CodeInternal is never sent with details: the server logs the cause and
	// answers 503-free 500 with a plain sentence.
	CodeInternal = "internal"

	// Rejection codes carried in a push Result, never as an HTTP status.
	CodeInvalidState = "invalid_state"
	CodeSeqReused    = "seq_reused"

	// Extensions of PROTOCOL.md sections 6 and 6a (old clients see an
	// unknown code with a sentence, and the status says what to do).

	// CodeWarningFull rejects an op that would take a warning past
	// WarningLimits: too many attempts, or too many bytes.
	CodeWarningFull = "warning_full"
	// CodePhotoQuotaExceeded refuses a photo past the device's daily
	// photo quota; the answer's Retry-After is the next Beijing midnight.
	CodePhotoQuotaExceeded = "photo_quota_exceeded"
)

var statusByCode = map[string]int{
	CodeInvalidRequest:      http.StatusBadRequest,
	CodeUnsupportedProtocol: http.StatusBadRequest,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeTokenExpired:        http.StatusUnauthorized,
	CodeDeviceRevoked:       http.StatusForbidden,
	CodeForbidden:           http.StatusForbidden,
	CodeNotFound:            http.StatusNotFound,
	CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	CodeOutOfOrder:          http.StatusConflict,
	CodeCursorExpired:       http.StatusGone,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeUpgradeRequired:     http.StatusUpgradeRequired,
	CodeUnavailable:         http.StatusServiceUnavailable,
	CodeTooManyDevices:      http.StatusForbidden,
	CodeInternal:            http.StatusInternalServerError,
	CodeInvalidState:        http.StatusConflict,
	CodeSeqReused:           http.StatusConflict,
	CodeWarningFull:         http.StatusConflict,
	// 429 with Retry-After: a client that knows only the status waits
	// until the quota renews, which is right.
	CodePhotoQuotaExceeded: http.StatusTooManyRequests,
}

// HTTPStatus is the one table from error code to HTTP status.
func HTTPStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus maps an HTTP status back to the code a server would have
// used, for responses that carry no envelope (a proxy's 502, say).
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusConflict:
		return CodeOutOfOrder
	case http.StatusGone:
		return CodeCursorExpired
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusUpgradeRequired:
		return CodeUpgradeRequired
	}
	if status >= 500 {
		return CodeUnavailable
	}
	return CodeInvalidRequest
}

// Error is the protocol's error: the body of every response with status >= 400
// is {"error": Error}. Message is a sentence a person can act on.
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// ErrorEnvelope is the body of an error response.
type ErrorEnvelope struct {
	Error *Error `json:"error"`
}

func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

// Status is the HTTP status for the error's code.
func (e *Error) Status() int { return HTTPStatus(e.Code) }

// Errorf makes an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField is an invalid_request naming the field at fault.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{
		Code:    CodeInvalidRequest,
		Message: fmt.Sprintf(format, args...),
		Details: map[string]any{"field": field},
	}
}

// With returns a copy of e with one more detail.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// DetailSeconds reads a detail that counts seconds, such as retry_after:
// a whole number however the codec decoded it (JSON gives float64,
// MessagePack the integer types). ok is false when the detail is absent,
// not a number, or negative.
func (e *Error) DetailSeconds(key string) (d time.Duration, ok bool) {
	var n float64
	switch v := reflect.ValueOf(e.Details[key]); v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n = float64(v.Uint())
	case reflect.Float32, reflect.Float64:
		n = v.Float()
	default:
		return 0, false
	}
	if n < 0 || n > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(n * float64(time.Second)), true
}

// ErrorCode returns the protocol code of err: its own for an *Error anywhere in
// the chain, "" for nil, and CodeInternal for anything else.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
