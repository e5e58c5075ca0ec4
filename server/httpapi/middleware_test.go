package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// panicServer serves a store, and GET /panic, which panics, logging as
// JSON into the buffer it returns.
func panicServer(t *testing.T) (http.Handler, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	a, err := app.New(context.Background(), st, app.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	mount := func(e *echo.Echo) {
		e.GET("/panic", func(echo.Context) error { panic(syncproto.Errorf(syncproto.CodeForbidden, "not for the client")) })
	}
	return httpapi.New(a, httpapi.Config{Logger: logger, Mount: []func(*echo.Echo){mount}}).Handler(), &logs
}

// A panic is the server's fault: logged with the request's id, answered
// unavailable in the protocol's format, whatever the panic carried.
func TestServer_Panic(t *testing.T) {
	h, logs := panicServer(t)
	r := httptest.NewRequest(http.MethodGet, "/panic", nil)
	r.Header.Set(echo.HeaderXRequestID, "client-id-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var env syncproto.ErrorEnvelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
	}
	if env.Error.Code != syncproto.CodeUnavailable || w.Code != env.Error.Status() {
		t.Fatalf("answer %d %+v, want unavailable", w.Code, env.Error)
	}
	if got := w.Header().Get(echo.HeaderXRequestID); got != "client-id-1" {
		t.Fatalf("request id %q, want the client's", got)
	}
	var failed bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "request failed" {
			failed = true
			if rec["request_id"] != "client-id-1" || rec["route"] != "/panic" || !strings.HasPrefix(rec["err"].(string), "panic: ") {
				t.Fatalf("log line %s", line)
			}
		}
	}
	if !failed {
		t.Fatalf("the panic was not logged:\n%s", logs)
	}
}

// The client's request id is kept when it is short; a missing or long one
// is replaced by a new one.
func TestServer_RequestID(t *testing.T) {
	h, _ := panicServer(t)
	for _, c := range []struct{ name, sent string }{{"Missing", ""}, {"TooLong", strings.Repeat("x", 65)}} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/healthz", nil)
			if c.sent != "" {
				r.Header.Set(echo.HeaderXRequestID, c.sent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get(echo.HeaderXRequestID); len(got) != 16 {
				t.Fatalf("request id %q, want 16 new hex digits", got)
			}
		})
	}
}
