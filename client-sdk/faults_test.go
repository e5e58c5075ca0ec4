package clientsdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The focused tests of each error answer the SDK must follow (PROTOCOL.md
// sections 2 and 4), each on a device whose network fails on purpose.

// TestFaults_TokenExpired: an access token that expires between two steps
// of a sync (the server's clock moves past its 15 minutes) gets
// 401 token_expired; the SDK refreshes it and carries on in the same try.
func TestFaults_TokenExpired(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("TE1", servertest.UnitVillA1), row("TE2", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 1, nil)
	d.mustSync(t)

	t.Run("BetweenPushAndPull", func(t *testing.T) {
		op1, att1 := d.record(t, ids["TE1"], syncproto.OutcomeRefused, true)
		op2, att2 := d.record(t, ids["TE2"], syncproto.OutcomeDissuaded, true)
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			resp, err := next()
			if r.Path() == "/v1/sync/push" && err == nil && resp.StatusCode == http.StatusOK {
				ct.clock.Add(16 * time.Minute)
			}
			return resp, err
		})
		defer d.net.SetHook(nil)
		d.net.ResetHistory()
		rep, err := d.c.Sync(ctx)
		if err != nil {
			t.Fatalf("sync: %v (requests %v)", err, requestLines(d.net.History()))
		}
		got := requestLines(d.net.History())
		want := []string{"sync/push 200 ", "sync/pull 401 token_expired", "auth/refresh 200 ", "sync/pull 200 "}
		if !slices.Equal(got, want) {
			t.Fatalf("requests = %q, want %q", got, want)
		}
		if rep.Attempts != 1 || rep.Applied != 2 {
			t.Fatalf("report %+v: want 1 try and 2 applied", rep)
		}
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		requireOnceInLog(t, ct.srv, opIDs(op1, op2))
		ct.requireAttemptsOnce(t, att1, att2)
		ct.requireHoldsScope(t, d.c, d.user)
	})

	t.Run("BetweenSyncs", func(t *testing.T) {
		ct.clock.Add(16 * time.Minute)
		op, att := d.record(t, ids["TE1"], syncproto.OutcomeUnreachable, false)
		d.net.ResetHistory()
		if _, err := d.c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		got := requestLines(d.net.History())
		want := []string{"sync/push 401 token_expired", "auth/refresh 200 ", "sync/push 200 ", "sync/pull 200 "}
		if !slices.Equal(got, want) {
			t.Fatalf("requests = %q, want %q", got, want)
		}
		requireOnceInLog(t, ct.srv, opIDs(op))
		ct.requireAttemptsOnce(t, att)
		ct.requireHoldsScope(t, d.c, d.user)
	})
}

// TestFaults_RateLimited: a 429 makes the SDK wait at least Retry-After
// before it tries again, whatever its own backoff would be.
func TestFaults_RateLimited(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("RL1", servertest.UnitVillA1))
	for i, tc := range []struct {
		name       string
		path       string
		header     string
		envelope   bool
		atLeast    time.Duration
		wantStatus int
	}{
		{"PushRetryAfter1", "/v1/sync/push", "1", true, time.Second, 429},
		{"PullRetryAfter1", "/v1/sync/pull", "1", true, time.Second, 429},
		{"PushRetryAfter0", "/v1/sync/push", "0", true, 0, 429},
		{"NoEnvelope", "/v1/sync/push", "1", false, time.Second, 429},
		{"HTTPDate", "/v1/sync/pull", "date", true, 30 * time.Second, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ct.newDevice(t, "a1", uint64(10+i), nil)
			d.mustSync(t)
			op, att := d.record(t, ids["RL1"], syncproto.OutcomeRefused, true)
			answered := false
			d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
				if r.Path() != tc.path || answered {
					return next()
				}
				answered = true
				ra := tc.header
				if ra == "date" {
					// A minute ahead of the SDK's clock (the wall
					// clock here): the wait read from it is over 30 s
					// however long the answer takes to arrive, and the
					// test's sleeps are not real.
					ra = time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
				}
				h := http.Header{"Retry-After": {ra}}
				if !tc.envelope {
					return &http.Response{StatusCode: 429, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
						Header: http.Header{"Retry-After": {ra}, "Content-Type": {"text/html"}}, Body: http.NoBody, Request: r.HTTP}, nil
				}
				return faultnet.ErrorResponse(r.HTTP, 429, syncproto.CodeRateLimited, "slow down", nil, h), nil
			})
			rep, err := d.c.Sync(ctx)
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			waits := d.sleeps.Waits()
			if !answered || len(waits) != 1 || rep.Attempts != 2 {
				t.Fatalf("answered 429: %v; waits %v; report %+v: want one wait and 2 tries", answered, waits, rep)
			}
			if waits[0] < tc.atLeast {
				t.Fatalf("the SDK waited %v after a 429 with Retry-After %q, want at least %v", waits[0], tc.header, tc.atLeast)
			}
			if tc.atLeast == 0 && waits[0] > d.opts.Retry.Max {
				t.Fatalf("Retry-After 0: waited %v, more than the policy's max %v", waits[0], d.opts.Retry.Max)
			}
			requireOnceInLog(t, ct.srv, opIDs(op))
			ct.requireAttemptsOnce(t, att)
		})
	}
}

// TestFaults_Unavailable: 503 (with or without the protocol's envelope) is
// retried with backoff; once the tries run out the ops wait, unlost, for
// the next sync.
func TestFaults_Unavailable(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("U1", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 20, nil)
	d.mustSync(t)

	unavailable := func(r *faultnet.Request, envelope bool) *http.Response {
		if envelope {
			return faultnet.ErrorResponse(r.HTTP, 503, syncproto.CodeUnavailable, "overloaded", nil, nil)
		}
		return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"text/html"}}, Body: http.NoBody, Request: r.HTTP}
	}

	t.Run("Retried", func(t *testing.T) {
		op, att := d.record(t, ids["U1"], syncproto.OutcomeRefused, true)
		pushes, pulls := 0, 0
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			switch r.Path() {
			case "/v1/sync/push":
				if pushes++; pushes <= 2 {
					return unavailable(r, pushes == 1), nil
				}
			case "/v1/sync/pull":
				if pulls++; pulls == 1 {
					return unavailable(r, true), nil
				}
			}
			return next()
		})
		defer d.net.SetHook(nil)
		before := len(d.sleeps.Waits())
		rep, err := d.c.Sync(ctx)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		waits := d.sleeps.Waits()[before:]
		if rep.Attempts != 4 || len(waits) != 3 {
			t.Fatalf("report %+v, waits %v: want 4 tries and 3 waits", rep, waits)
		}
		for _, w := range waits {
			if w <= 0 || w > d.opts.Retry.Max {
				t.Fatalf("wait %v outside (0, %v]", w, d.opts.Retry.Max)
			}
		}
		requireOnceInLog(t, ct.srv, opIDs(op))
		ct.requireAttemptsOnce(t, att)
	})

	t.Run("TriesRunOut", func(t *testing.T) {
		op, att := d.record(t, ids["U1"], syncproto.OutcomeDissuaded, true)
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			return unavailable(r, true), nil
		})
		_, err := d.c.Sync(ctx)
		if syncproto.ErrorCode(err) != syncproto.CodeUnavailable || !clientsdk.Transient(err) {
			t.Fatalf("sync with the server down: %v, want a transient unavailable", err)
		}
		if ops := d.c.Ops(); len(ops) != 1 || ops[0].OpID != op.OpID || ops[0].State == "rejected" {
			t.Fatalf("ops after failed sync: %+v", ops)
		}
		if st := d.c.Status(); st.LastError == nil || st.Pending != 1 {
			t.Fatalf("status %+v", st)
		}
		d.net.SetHook(nil)
		d.mustSync(t)
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		requireOnceInLog(t, ct.srv, opIDs(op))
		ct.requireAttemptsOnce(t, att)
		ct.requireHoldsScope(t, d.c, d.user)
	})
}

// TestFaults_PayloadTooLarge: a push answered 413 is split until it fits;
// a single op that cannot be split fails the sync but stays queued.
func TestFaults_PayloadTooLarge(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	var rows []syncproto.FeedWarning
	for i := range 4 {
		rows = append(rows, row(fmt.Sprintf("PL%d", i), servertest.UnitVillA1))
	}
	idByExt := ct.importWarnings(t, rows...)
	d := ct.newDevice(t, "a1", 30, nil)
	d.mustSync(t)

	// The "server" takes at most maxOps ops per push: more is 413 with the
	// protocol's envelope, as a smaller body limit would answer.
	const maxOps = 2
	var sizes []int
	var seqs []uint64
	limit := maxOps
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/sync/push" {
			return next()
		}
		var req syncproto.PushRequest
		if err := r.Decode(&req); err != nil {
			t.Errorf("decode push: %v", err)
			return next()
		}
		if len(req.Ops) > limit {
			return faultnet.ErrorResponse(r.HTTP, 413, syncproto.CodePayloadTooLarge, "the body is too large", nil, nil), nil
		}
		sizes = append(sizes, len(req.Ops))
		for _, op := range req.Ops {
			seqs = append(seqs, op.ClientSeq)
		}
		return next()
	})
	defer d.net.SetHook(nil)

	var ops []clientsdk.OpStatus
	var atts []string
	for i := range 7 {
		op, att := d.record(t, idByExt[fmt.Sprintf("PL%d", i%4)], syncproto.OutcomeRefused, i%2 == 0)
		ops, atts = append(ops, op), append(atts, att)
	}
	rep, err := d.c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if rep.Applied != 7 {
		t.Fatalf("report %+v: want 7 applied", rep)
	}
	for _, n := range sizes {
		if n > maxOps {
			t.Fatalf("a push of %d ops reached the server, limit %d", n, maxOps)
		}
	}
	if !slices.IsSorted(seqs) || len(seqs) != 7 {
		t.Fatalf("client_seqs pushed %v: want 7 in order", seqs)
	}
	requireOnceInLog(t, ct.srv, opIDs(ops...))
	ct.requireAttemptsOnce(t, atts...)
	if left := d.c.Ops(); len(left) != 0 {
		t.Fatalf("ops left: %+v", left)
	}

	t.Run("OneOpTooLarge", func(t *testing.T) {
		limit = 0
		op, att := d.record(t, idByExt["PL0"], syncproto.OutcomeDissuaded, true)
		_, err := d.c.Sync(ctx)
		if syncproto.ErrorCode(err) != syncproto.CodePayloadTooLarge {
			t.Fatalf("sync of one op the server refuses as too large: %v", err)
		}
		if left := d.c.Ops(); len(left) != 1 || left[0].OpID != op.OpID || left[0].State == "rejected" {
			t.Fatalf("ops: %+v, want the op still queued", left)
		}
		limit = maxOps
		d.mustSync(t)
		requireOnceInLog(t, ct.srv, opIDs(op))
		ct.requireAttemptsOnce(t, att)
	})
}

// TestFaults_OutOfOrder: a 409 out_of_order says where the server stands;
// the SDK numbers its unsent ops again from there and sends them, each
// handled by the server exactly once.
func TestFaults_OutOfOrder(t *testing.T) {
	ctx := context.Background()

	// Fabricated: the transport answers the first push 409 with an
	// expected_client_seq below the batch's first, then lets the real
	// server answer. The server really has more than it said, so the
	// renumbered ops meet seq_reused, and the SDK numbers them again.
	t.Run("Fabricated", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t, row("OO1", servertest.UnitVillA1), row("OO2", servertest.UnitVillA1))
		d := ct.newDevice(t, "a1", 40, nil)
		d.mustSync(t)
		var all []clientsdk.OpStatus
		var atts []string
		for i := range 3 {
			op, att := d.record(t, ids["OO1"], syncproto.OutcomeRefused, i == 0)
			all, atts = append(all, op), append(atts, att)
		}
		d.mustSync(t)
		var late []clientsdk.OpStatus
		for range 3 {
			op, att := d.record(t, ids["OO2"], syncproto.OutcomeUnreachable, false)
			late, atts = append(late, op), append(atts, att)
		}
		if esc, err := d.c.Escalate(ids["OO2"], "家属不配合"); err != nil {
			t.Fatal(err)
		} else {
			late = append(late, esc)
		}
		all = append(all, late...)
		faked := false
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			if r.Path() != "/v1/sync/push" || faked {
				return next()
			}
			faked = true
			var req syncproto.PushRequest
			if err := r.Decode(&req); err != nil || len(req.Ops) == 0 || req.Ops[0].ClientSeq != 4 {
				t.Errorf("first push %+v %v: want the batch from client_seq 4", req.Ops, err)
			}
			return faultnet.ErrorResponse(r.HTTP, 409, syncproto.CodeOutOfOrder, "send from client_seq 2",
				map[string]any{"expected_client_seq": 2}, nil), nil
		})
		if _, err := d.c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if !faked {
			t.Fatal("no push was answered 409")
		}
		d.net.SetHook(nil)
		d.mustSync(t)
		if ops := d.c.Ops(); len(ops) != 0 {
			t.Fatalf("ops left: %+v", ops)
		}
		requireOnceInLog(t, ct.srv, opIDs(all...))
		ct.requireAttemptsOnce(t, atts...)
		ct.requireHoldsScope(t, d.c, d.user)
	})

	// RestoredServer: the real thing. The server is restored from a backup
	// that holds the first of two ops this device had pushed (both
	// acknowledged, neither confirmed by a pull yet). The next push meets a
	// real 409 from the restored server; the SDK must send again only the
	// op the backup lacks, and not the one the server still has.
	t.Run("RestoredServer", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t, row("RS1", servertest.UnitVillA1), row("RS2", servertest.UnitVillA1), row("RS3", servertest.UnitVillA1))
		cadre := ct.newDevice(t, "a1", 41, nil)
		cadre.mustSync(t)
		for _, ext := range []string{"RS1", "RS2", "RS3"} {
			cadre.record(t, ids[ext], syncproto.OutcomeDissuaded, true)
		}
		cadre.mustSync(t)
		lead := ct.newDevice(t, "leadA", 42, nil)
		lead.mustSync(t)

		// Pushes land, pulls fail: the ops stay in the outbox as applied.
		lead.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			if r.Path() == "/v1/sync/pull" {
				return nil, fmt.Errorf("%w: pull lost", faultnet.ErrInjected)
			}
			return next()
		})
		ret1, err := lead.c.Review(ids["RS1"], syncproto.DecisionReturn, "补充照片")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err == nil {
			t.Fatal("sync with pulls failing succeeded")
		}
		var backup bytes.Buffer
		if _, err := ct.srv.Store.Backup(ctx, &backup); err != nil {
			t.Fatalf("hot backup: %v", err)
		}
		ret2, err := lead.c.Review(ids["RS2"], syncproto.DecisionApprove, "属实")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err == nil {
			t.Fatal("sync with pulls failing succeeded")
		}
		for _, op := range lead.c.Ops() {
			if op.State != "applied" {
				t.Fatalf("before the restore: op %s is %s, want applied", op.OpID, op.State)
			}
		}

		// Restore: a new server over the backup, which Restore gives a new
		// incarnation.
		ct.restore(t, backup.Bytes(), cadre, lead)
		lead.net.SetHook(nil)

		ret3, err := lead.c.Review(ids["RS3"], syncproto.DecisionReturn, "重新核实")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lead.c.Sync(ctx); err != nil {
			t.Fatalf("sync after the restore: %v (requests %v)", err, requestLines(lead.net.History()))
		}
		if h := requestLines(lead.net.History()); len(h) == 0 || h[0] != "sync/push 409 out_of_order" {
			t.Fatalf("requests after the restore %v: want a real 409 first", h)
		}
		lead.mustSync(t)
		if rej := lead.c.Rejected(); len(rej) != 0 {
			t.Errorf("ops rejected after the restore: %+v", rej)
		}
		if ops := lead.c.Ops(); len(ops) != 0 {
			t.Errorf("ops left: %+v", ops)
		}
		// ret1 was in the backup: once. ret2 was lost with the restore and
		// sent again: once. ret3 is new: once.
		requireOnceInLog(t, ct.srv, opIDs(ret1, ret2, ret3))
		p := ct.pullFresh(t, "leadA")
		if w := p.warnings[ids["RS1"]]; len(w.Reviews) != 1 || w.Status != syncproto.WarningAssigned {
			t.Errorf("RS1 after the restore: %s with %d reviews, want returned once", w.Status, len(w.Reviews))
		}
		if w := p.warnings[ids["RS2"]]; len(w.Reviews) != 1 || w.Status != syncproto.WarningClosed {
			t.Errorf("RS2 after the restore: %s with %d reviews, want approved once", w.Status, len(w.Reviews))
		}
		ct.requireHoldsScope(t, lead.c, lead.user)
	})
}

// TestFaults_CursorExpired: a 410 cursor_expired makes the SDK pull again
// from an empty cursor, and it still ends with exactly the server's state
// (a warning that left its scope meanwhile is gone).
func TestFaults_CursorExpired(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("CE1", servertest.UnitVillA2), row("CE2", servertest.UnitVillA2))
	lead := ct.newDevice(t, "leadA", 50, nil)
	lead.mustSync(t)
	for _, ext := range []string{"CE1", "CE2"} {
		if _, err := lead.c.Assign(ids[ext], ct.ids["a2x"]); err != nil {
			t.Fatal(err)
		}
	}
	lead.mustSync(t)
	d := ct.newDevice(t, "a2x", 51, nil)
	d.mustSync(t)
	if n := len(d.c.Warnings(clientsdk.Filter{})); n != 2 {
		t.Fatalf("a2x holds %d warnings, want 2", n)
	}
	// CE1 leaves a2x's scope; a2x records on CE2 meanwhile.
	if _, err := lead.c.Assign(ids["CE1"], ct.ids["a2y"]); err != nil {
		t.Fatal(err)
	}
	lead.mustSync(t)
	op, att := d.record(t, ids["CE2"], syncproto.OutcomeDissuaded, true)

	var cursors []string
	expired := false
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/sync/pull" {
			return next()
		}
		var req syncproto.PullRequest
		if err := r.Decode(&req); err != nil {
			t.Errorf("decode pull: %v", err)
		}
		cursors = append(cursors, req.Cursor)
		if !expired {
			expired = true
			return faultnet.ErrorResponse(r.HTTP, 410, syncproto.CodeCursorExpired, "the cursor cannot be read; start again", nil, nil), nil
		}
		return next()
	})
	defer d.net.SetHook(nil)
	rep, err := d.c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(cursors) < 2 || cursors[0] == "" || cursors[1] != "" {
		t.Fatalf("pull cursors %q: want the stored cursor, then an empty one", cursors)
	}
	if rep.Attempts != 1 {
		t.Fatalf("report %+v: cursor_expired should not cost a try", rep)
	}
	if _, ok := d.c.Warning(ids["CE1"]); ok {
		t.Fatal("a2x still holds CE1, reassigned to a2y")
	}
	requireOnceInLog(t, ct.srv, opIDs(op))
	ct.requireAttemptsOnce(t, att)
	ct.requireHoldsScope(t, d.c, d.user)
}

// TestFaults_DeviceRevoked: a device revoked with wipe deletes every
// warning and the directory, and keeps the ops it never sent for hand-over
// (DESIGN.md "The SDK"); it syncs no more.
func TestFaults_DeviceRevoked(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("DR1", servertest.UnitVillA1), row("DR2", servertest.UnitVillA1))

	checkWiped := func(t *testing.T, d *device, unsent []clientsdk.OpStatus) {
		t.Helper()
		requireWiped(t, d.c, unsent)
		if _, err := d.c.RecordAttempt(ids["DR1"], visit(syncproto.OutcomeUnreachable)); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("record on a revoked device: %v", err)
		}
		if _, err := d.c.Sync(ctx); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync of a revoked device: %v", err)
		}
	}

	t.Run("Unsent", func(t *testing.T) {
		d := ct.newDevice(t, "a1", 60, nil)
		d.mustSync(t)
		sent, _ := d.record(t, ids["DR1"], syncproto.OutcomeRefused, true)
		d.mustSync(t)
		u1, _ := d.record(t, ids["DR1"], syncproto.OutcomeDissuaded, true)
		u2, err := d.c.Escalate(ids["DR2"], "联系不上")
		if err != nil {
			t.Fatal(err)
		}
		admin := ct.srv.Admin(t)
		if _, err := admin.RevokeDevice(ctx, d.c.DeviceID(), true); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		d.net.ResetHistory()
		_, err = d.c.Sync(ctx)
		if !errors.Is(err, clientsdk.ErrRevoked) || syncproto.ErrorCode(err) != syncproto.CodeDeviceRevoked {
			t.Fatalf("sync after revoke: %v", err)
		}
		if h := requestLines(d.net.History()); len(h) != 1 || h[0] != "sync/push 403 device_revoked" {
			t.Fatalf("requests after revoke %v, want the one push that learned it", h)
		}
		checkWiped(t, d, []clientsdk.OpStatus{u1, u2})
		// The ops the server never got are not on it.
		logged := opsInLog(t, ct.srv)
		if len(logged[sent.OpID]) != 1 || len(logged[u1.OpID]) != 0 || len(logged[u2.OpID]) != 0 {
			t.Errorf("log holds sent %d, unsent %d and %d times", len(logged[sent.OpID]), len(logged[u1.OpID]), len(logged[u2.OpID]))
		}
		// Reopened, the device is still wiped and still holds them.
		d.close()
		d.open(t)
		checkWiped(t, d, []clientsdk.OpStatus{u1, u2})
	})

	// RevokedBetweenPushAndPull: the push is acknowledged, then the device
	// is revoked before its pull. The acknowledged op is on the server, not
	// unsent: handing it over would have it entered twice.
	t.Run("RevokedBetweenPushAndPull", func(t *testing.T) {
		d := ct.newDevice(t, "a1", 61, nil)
		d.mustSync(t)
		acked, _ := d.record(t, ids["DR2"], syncproto.OutcomeRefused, true)
		admin := ct.srv.Admin(t)
		var unsent clientsdk.OpStatus
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			resp, err := next()
			if r.Path() == "/v1/sync/push" && err == nil && resp.StatusCode == http.StatusOK {
				// While the answer travels, the person records more and
				// the admin revokes the device.
				var rerr error
				if unsent, rerr = d.c.Escalate(ids["DR2"], "需要民警协助"); rerr != nil {
					t.Errorf("escalate: %v", rerr)
				}
				if _, rerr := admin.RevokeDevice(ctx, d.c.DeviceID(), true); rerr != nil {
					t.Errorf("revoke: %v", rerr)
				}
			}
			return resp, err
		})
		_, err := d.c.Sync(ctx)
		if !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync: %v, want revoked at the pull", err)
		}
		if len(opsInLog(t, ct.srv)[acked.OpID]) != 1 {
			t.Fatal("the acknowledged op is not on the server")
		}
		checkWiped(t, d, []clientsdk.OpStatus{unsent})
	})
}

// TestFaults_RefreshAnswerLost: the server rotates the refresh token but its
// answer never arrives, and the SDK retries the refresh with the token it
// holds. Within the server's grace window (PROTOCOL.md section 3) the retry
// gets a new pair and the sync succeeds. Past it, the retry ends the
// device's session; the SDK then says ErrNotLoggedIn, keeps every unsent
// op, lets the same user sign in again on the same device, and the ops
// arrive once.
func TestFaults_RefreshAnswerLost(t *testing.T) {
	t.Run("RetryInGrace", func(t *testing.T) { testRefreshAnswerLost(t, false) })
	t.Run("RetryAfterGrace", func(t *testing.T) { testRefreshAnswerLost(t, true) })
}

func testRefreshAnswerLost(t *testing.T, late bool) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("RA1", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 70, nil)
	d.mustSync(t)
	deviceID := d.c.DeviceID()
	op, att := d.record(t, ids["RA1"], syncproto.OutcomeDissuaded, true)
	ct.clock.Add(16 * time.Minute)
	lost := false
	d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() != "/v1/auth/refresh" || lost {
			return next()
		}
		lost = true
		resp, err := d.net.Send(r)
		if err != nil {
			return nil, err
		}
		if _, err := faultnet.ReadAnswer(resp); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("refresh: %d %v", resp.StatusCode, err)
		}
		if late {
			// The link is gone for longer than the grace window.
			ct.clock.Add(app.DefaultRefreshGrace + time.Second)
		}
		return nil, fmt.Errorf("%w: the refresh answer was lost", faultnet.ErrInjected)
	})
	defer d.net.SetHook(nil)
	_, err := d.c.Sync(ctx)
	if !lost {
		t.Fatal("no refresh happened")
	}
	switch {
	case !late:
		if err != nil {
			t.Fatalf("sync retrying a lost refresh answer within the grace window: %v", err)
		}
	case errors.Is(err, clientsdk.ErrNotLoggedIn):
		if _, loggedIn := d.c.User(); loggedIn {
			t.Fatal("User() says logged in after ErrNotLoggedIn")
		}
		if ops := d.c.Ops(); len(ops) != 1 || ops[0].OpID != op.OpID {
			t.Fatalf("ops after the session ended: %+v", ops)
		}
		if _, err := d.c.Login(ctx, "a1", servertest.CityPassword); err != nil {
			t.Fatalf("sign in again with unsent ops: %v", err)
		}
		if d.c.DeviceID() != deviceID {
			t.Fatalf("signing in again changed the device id")
		}
		d.mustSync(t)
	default:
		t.Fatalf("sync retrying a lost refresh answer after the grace window: %v, want ErrNotLoggedIn", err)
	}
	if ops := d.c.Ops(); len(ops) != 0 {
		t.Fatalf("ops left: %+v", ops)
	}
	requireOnceInLog(t, ct.srv, opIDs(op))
	ct.requireAttemptsOnce(t, att)
	ct.requireHoldsScope(t, d.c, d.user)
}
