package clientsdk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// refuseFirstPush answers the first push 400 invalid_request naming its
// second op, as a server with a newer rule would; then it lets requests
// through.
type refuseFirstPush struct{ done atomic.Bool }

func (r *refuseFirstPush) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/sync/push" && r.done.CompareAndSwap(false, true) {
		body := `{"error":{"code":"invalid_request","message":"op 1: notes are not allowed here","details":{"field":"ops[1].body.notes"}}}`
		return &http.Response{StatusCode: 400, Status: "400 Bad Request", Request: req,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewBufferString(body))}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestSDK_InvalidOpSetAside: one op the server cannot read is set aside as
// rejected and the others still reach it, numbered again.
func TestSDK_InvalidOpSetAside(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("I1", servertest.UnitVillA1))
	c := ct.phone(t, t.TempDir(), testKey(t), &refuseFirstPush{})
	signIn(t, c, "a1")
	var recorded []string
	for _, outcome := range []string{syncproto.OutcomeUnreachable, syncproto.OutcomeRefused, syncproto.OutcomeDissuaded} {
		op, err := c.RecordAttempt(ids["I1"], visit(outcome))
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, op.OpID)
	}
	rep := mustSync(t, c)
	if rep.Rejected != 1 || rep.Applied != 2 {
		t.Fatalf("report %+v, want 1 rejected and 2 applied", rep)
	}
	rej := c.Rejected()
	if len(rej) != 1 || rej[0].OpID != recorded[1] || rej[0].Code != syncproto.CodeInvalidRequest {
		t.Fatalf("rejected = %+v, want the second op", rej)
	}
	w, _ := c.Warning(ids["I1"])
	if len(w.Attempts) != 2 || w.Status != syncproto.WarningResolved || len(c.Ops()) != 1 {
		t.Fatalf("after sync: %d attempts, %s, ops %+v", len(w.Attempts), w.Status, c.Ops())
	}
}

// expireFirstPull answers the first pull with a stored cursor 410
// cursor_expired.
type expireFirstPull struct{ done atomic.Bool }

func (x *expireFirstPull) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/sync/pull" && x.done.CompareAndSwap(false, true) {
		body := `{"error":{"code":"cursor_expired","message":"the cursor cannot be read; pull again from an empty cursor"}}`
		return &http.Response{StatusCode: 410, Status: "410 Gone", Request: req,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewBufferString(body))}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestSDK_CursorExpiredIsANewBase: after cursor_expired the pages from an
// empty cursor replace what the device held, as a reset does: a warning the
// server no longer sends this device (its remove long gone) does not stay.
func TestSDK_CursorExpiredIsANewBase(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("X1", servertest.UnitVillA1))
	dir, key := t.TempDir(), testKey(t)
	c := ct.phone(t, dir, key, nil)
	signIn(t, c, "a1")
	mustSync(t, c)
	c.Close()
	// A warning this device holds but the server will not mention again.
	local, err := localstore.Open(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	ghost := row("GHOST", servertest.UnitVillA1)
	err = local.Update(func(tx *localstore.Tx) error {
		return tx.PutWarning(&syncproto.Warning{ID: "0190a3b2-0000-7000-8000-00000000dead", Name: ghost.Name, Unit: ghost.Unit, Status: syncproto.WarningAssigned})
	})
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	c = ct.phone(t, dir, key, &expireFirstPull{})
	if n := len(c.Warnings(clientsdk.Filter{})); n != 2 {
		t.Fatalf("before: %d warnings, want the real one and the ghost", n)
	}
	rep := mustSync(t, c)
	got := c.Warnings(clientsdk.Filter{})
	if !rep.Reset || len(got) != 1 || got[0].ID != ids["X1"] {
		t.Fatalf("after cursor_expired: reset=%v, warnings %d; want only X1", rep.Reset, len(got))
	}
}

// failBlobs refuses photo uploads while on.
type failBlobs struct{ on atomic.Bool }

func (f *failBlobs) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.on.Load() && (strings.HasPrefix(req.URL.Path, "/v1/blobs/") || strings.HasPrefix(req.URL.Path, "/v1/uploads")) {
		return nil, errors.New("no signal for a photo")
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestSDK_SwitchUserWithPhotoPending: a photo not yet uploaded is unsent
// work: another user may not sign in on the phone until it has gone.
func TestSDK_SwitchUserWithPhotoPending(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("SW1", servertest.UnitVillA1))
	net := &failBlobs{}
	net.on.Store(true)
	c := ct.phone(t, t.TempDir(), testKey(t), net)
	ctx := context.Background()
	signIn(t, c, "a1")
	mustSync(t, c)
	path := filepath.Join(t.TempDir(), "visit.jpg")
	if err := os.WriteFile(path, append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 600)...), 0o600); err != nil {
		t.Fatal(err)
	}
	a := visit(syncproto.OutcomeDissuaded)
	a.Photos = []string{path}
	if _, err := c.RecordAttempt(ids["SW1"], a); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, c); rep.Applied != 1 || rep.Photos != 0 || rep.PhotosFailed != 1 || len(c.Ops()) != 0 {
		t.Fatalf("sync with photos failing: %+v, ops %v", rep, c.Ops())
	}
	if st := c.Status(); st.PhotosPending != 1 || st.PhotosFailed != 1 || !strings.Contains(st.PhotoError, "no signal") {
		t.Fatalf("status with a photo failing: %+v", st)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "b1", servertest.CityPassword); !errors.Is(err, clientsdk.ErrHandOverFirst) {
		t.Fatalf("b1 signs in over a1's unsent photo: %v", err)
	}
	net.on.Store(false)
	signIn(t, c, "a1")
	if rep := mustSync(t, c); rep.Photos != 1 {
		t.Fatalf("photo upload: %+v", rep)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "b1", servertest.CityPassword); err != nil {
		t.Fatalf("b1 after the photo went: %v", err)
	}
	mustSync(t, c)
	if got := c.Warnings(clientsdk.Filter{}); len(got) != 0 {
		t.Fatalf("b1 sees a1's warnings: %d", len(got))
	}
}
