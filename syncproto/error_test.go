package syncproto_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[string]int{
		syncproto.CodeInvalidRequest:      http.StatusBadRequest,
		syncproto.CodeUnsupportedProtocol: http.StatusBadRequest,
		syncproto.CodeUnauthorized:        http.StatusUnauthorized,
		syncproto.CodeTokenExpired:        http.StatusUnauthorized,
		syncproto.CodeDeviceRevoked:       http.StatusForbidden,
		syncproto.CodeForbidden:           http.StatusForbidden,
		syncproto.CodeNotFound:            http.StatusNotFound,
		syncproto.CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
		syncproto.CodeOutOfOrder:          http.StatusConflict,
		syncproto.CodeCursorExpired:       http.StatusGone,
		syncproto.CodeRateLimited:         http.StatusTooManyRequests,
		syncproto.CodeUpgradeRequired:     http.StatusUpgradeRequired,
		syncproto.CodeUnavailable:         http.StatusServiceUnavailable,
		syncproto.CodeInternal:            http.StatusInternalServerError,
		// Rejection codes travel in a push Result, but map somewhere sane.
		syncproto.CodeInvalidState: http.StatusConflict,
		syncproto.CodeSeqReused:    http.StatusConflict,
		"no_such_code":             http.StatusInternalServerError,
		"":                         http.StatusInternalServerError,
	} {
		t.Run(code, func(t *testing.T) {
			if got := syncproto.HTTPStatus(code); got != want {
				t.Fatalf("HTTPStatus(%q) = %d, want %d", code, got, want)
			}
			if code != "" {
				if got := syncproto.Errorf(code, "x").Status(); got != want {
					t.Fatalf("Error.Status() = %d, want %d", got, want)
				}
			}
		})
	}
}

func TestCodeForStatus(t *testing.T) {
	for status, want := range map[int]string{
		400: syncproto.CodeInvalidRequest,
		401: syncproto.CodeUnauthorized,
		403: syncproto.CodeForbidden,
		404: syncproto.CodeNotFound,
		409: syncproto.CodeOutOfOrder,
		410: syncproto.CodeCursorExpired,
		413: syncproto.CodePayloadTooLarge,
		426: syncproto.CodeUpgradeRequired,
		429: syncproto.CodeRateLimited,
		500: syncproto.CodeUnavailable,
		502: syncproto.CodeUnavailable,
		503: syncproto.CodeUnavailable,
		418: syncproto.CodeInvalidRequest,
	} {
		if got := syncproto.CodeForStatus(status); got != want {
			t.Errorf("CodeForStatus(%d) = %s, want %s", status, got, want)
		}
		// Each code maps back to the status it came from (5xx are all
		// retried as unavailable).
		if status < 500 && status != 418 && syncproto.HTTPStatus(want) != status {
			t.Errorf("HTTPStatus(CodeForStatus(%d)) = %d", status, syncproto.HTTPStatus(want))
		}
	}
}

func TestErrorCode(t *testing.T) {
	base := syncproto.Errorf(syncproto.CodeOutOfOrder, "resume at %d", 7).With("expected_client_seq", 7)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Nil", nil, ""},
		{"Direct", base, syncproto.CodeOutOfOrder},
		{"Wrapped", fmt.Errorf("push: %w", base), syncproto.CodeOutOfOrder},
		{"WrappedTwice", fmt.Errorf("handler: %w", fmt.Errorf("store: %w", base)), syncproto.CodeOutOfOrder},
		{"Joined", errors.Join(io.EOF, base), syncproto.CodeOutOfOrder},
		{"Plain", errors.New("disk full"), syncproto.CodeInternal},
		{"WrappedPlain", fmt.Errorf("commit: %w", io.ErrUnexpectedEOF), syncproto.CodeInternal},
		{"FormattedNotWrapped", fmt.Errorf("push: %v", base), syncproto.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := syncproto.ErrorCode(tc.err); got != tc.want {
				t.Fatalf("ErrorCode = %q, want %q", got, tc.want)
			}
			e := syncproto.AsError(tc.err)
			if (e != nil) != (tc.want != "" && tc.want != syncproto.CodeInternal) {
				t.Fatalf("AsError = %v", e)
			}
			if e != nil && e.Details["expected_client_seq"] != 7 {
				t.Fatalf("details lost: %v", e.Details)
			}
		})
	}
}

func TestError(t *testing.T) {
	t.Run("Message", func(t *testing.T) {
		e := syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", townUnit)
		if got, want := e.Error(), "forbidden: unit "+townUnit+" is outside your unit"; got != want {
			t.Fatalf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("InvalidFieldNamesField", func(t *testing.T) {
		e := syncproto.InvalidField("ops.body.reached", "reached must be %s", "a bool")
		if e.Code != syncproto.CodeInvalidRequest || e.Details["field"] != "ops.body.reached" || e.Message != "reached must be a bool" {
			t.Fatalf("%+v", e)
		}
	})
	t.Run("WithCopies", func(t *testing.T) {
		a := syncproto.InvalidField("id", "bad")
		b := a.With("row", 3)
		if _, ok := a.Details["row"]; ok {
			t.Fatal("With changed the original's details")
		}
		if b.Details["row"] != 3 || b.Details["field"] != "id" || b.Code != a.Code || b.Message != a.Message {
			t.Fatalf("With gave %+v", b)
		}
		var none *syncproto.Error = syncproto.Errorf(syncproto.CodeDeviceRevoked, "revoked")
		if w := none.With("wipe", true); w.Details["wipe"] != true || none.Details != nil {
			t.Fatalf("With on no details: %+v, original %+v", w, none)
		}
	})
	t.Run("EnvelopeShape", func(t *testing.T) {
		// {"error": {"code": C, "message": M, "details": {...}}}, details
		// left out when there are none.
		for _, tc := range []struct {
			e    *syncproto.Error
			want string
		}{
			{syncproto.InvalidField("cursor", "bad"), `{"error":{"code":"invalid_request","message":"bad","details":{"field":"cursor"}}}`},
			{syncproto.Errorf(syncproto.CodeUnavailable, "later"), `{"error":{"code":"unavailable","message":"later"}}`},
		} {
			b, err := syncproto.JSON.Marshal(syncproto.ErrorEnvelope{Error: tc.e})
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got %s, want %s", b, tc.want)
			}
		}
	})
}

// details.retry_after is a number of seconds whichever codec carried it:
// JSON decodes it as float64, MessagePack as an integer type.
func TestError_DetailSeconds(t *testing.T) {
	sent := &syncproto.ErrorEnvelope{Error: syncproto.Errorf(syncproto.CodeRateLimited, "slow down").With("retry_after", 20)}
	for _, c := range []syncproto.Codec{syncproto.JSON, syncproto.Msgpack} {
		data, err := c.Marshal(sent)
		if err != nil {
			t.Fatal(err)
		}
		var got syncproto.ErrorEnvelope
		if err := c.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if d, ok := got.Error.DetailSeconds("retry_after"); !ok || d != 20*time.Second {
			t.Errorf("%s: retry_after read as %v, %v; want 20s", c.MediaType(), d, ok)
		}
	}
	for _, bad := range []any{"20", -1, nil, true} {
		e := syncproto.Errorf(syncproto.CodeRateLimited, "x").With("retry_after", bad)
		if d, ok := e.DetailSeconds("retry_after"); ok {
			t.Errorf("retry_after %#v read as %v", bad, d)
		}
	}
}
