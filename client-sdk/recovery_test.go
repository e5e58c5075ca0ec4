package clientsdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// refuseFirst answers the first request to path with status and a
// protocol error (its JSON body), as the server would; then it lets
// requests through.
type refuseFirst struct {
	path   string
	status int
	body   string
	done   atomic.Bool
}

func (r *refuseFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == r.path && r.done.CompareAndSwap(false, true) {
		return &http.Response{StatusCode: r.status, Status: fmt.Sprintf("%d %s", r.status, http.StatusText(r.status)), Request: req,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(r.body))}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestSDK_InvalidOpSetAside: one op the server cannot read is set aside as
// rejected and the others still reach it, numbered again.
func TestSDK_InvalidOpSetAside(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("I1", servertest.UnitVillA1))
	// The first push is refused for its second op, as a server with a
	// newer rule would.
	c := ct.phone(t, t.TempDir(), testKey(t), &refuseFirst{path: "/v1/sync/push", status: http.StatusBadRequest,
		body: `{"error":{"code":"invalid_request","message":"op 1: notes are not allowed here","details":{"field":"ops[1].body.notes"}}}`})
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

// TestSDK_CursorExpiredIsANewBase: after cursor_expired the pages from an
// empty cursor replace what the device held, as a reset does: a warning the
// server no longer sends this device (its remove long gone) does not stay.
func TestSDK_CursorExpiredIsANewBase(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("X1", servertest.UnitVillA1))
	dir, key := t.TempDir(), testKey(t)
	c := ct.loggedInAt(t, dir, key, "a1")
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
	// The first pull, with the stored cursor, meets cursor_expired.
	c = ct.phone(t, dir, key, &refuseFirst{path: "/v1/sync/pull", status: http.StatusGone,
		body: `{"error":{"code":"cursor_expired","message":"the cursor cannot be read; pull again from an empty cursor"}}`})
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
	a := visit(syncproto.OutcomeDissuaded)
	a.Photos = []string{writePhoto(t, 604, 1)}
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
