package clientsdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestRestore_SDKSync: the server is restored from a hot backup taken over
// GET /v1/admin/backup, and a real SDK syncs with it. What the device made:
//
//	A  recorded and synced before the backup          in the backup
//	B  recorded and synced after it, its applied
//	   result confirmed by a pull                      not in the backup
//	C  recorded after it and pushed (acknowledged),
//	   but no pull confirmed it yet                    not in the backup
//	D  recorded after it, never sent (offline)         not in the backup
//
// After the restore the device's next push meets 409 out_of_order (the
// restored server has its ops up to A only). B left the outbox when a pull
// confirmed it, but the SDK kept it in its journal: it takes B back into
// the outbox ahead of C and D, numbers the three again from there and
// sends them, then its pull resets (new incarnation) and takes the
// server's state as new. A, B, C and D end in the server's log once each,
// and the device shows B's attempt as the server's. What a restore still
// loses is what no device holds: feed imports and admin changes after the
// backup, and ops confirmed longer ago than the journal's retention.
//
// TokenRotatedAfterBackup: the device's refresh token rotated after the
// backup, so the restored server does not know the one it holds: the
// forced refresh after the reset signs it out. Its ops were pushed before
// that; it signs in again and carries on.
func TestRestore_SDKSync(t *testing.T) {
	t.Run("TokenFromBeforeBackup", func(t *testing.T) { testRestoreSDKSync(t, false) })
	t.Run("TokenRotatedAfterBackup", func(t *testing.T) { testRestoreSDKSync(t, true) })
}

func testRestoreSDKSync(t *testing.T, rotate bool) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("RA", servertest.UnitVillA1), row("RB", servertest.UnitVillA1),
		row("RC", servertest.UnitVillA1), row("RD", servertest.UnitVillA1))
	cadre := ct.newDevice(t, "a1", 70, nil)
	cadre.mustSync(t)
	opA, attA := cadre.record(t, ids["RA"], syncproto.OutcomeUnreachable, false)
	cadre.mustSync(t)

	tarball := ct.backup(t)

	if rotate {
		// The server's clock passes the access token's lifetime: the next
		// request is answered token_expired and the SDK refreshes.
		ct.clock.Add(16 * time.Minute)
	}
	opB, attB := cadre.record(t, ids["RB"], syncproto.OutcomeUnreachable, false)
	cadre.mustSync(t)
	if w, _ := cadre.c.Warning(ids["RB"]); len(w.Attempts) != 1 || len(w.Ops) != 0 {
		t.Fatalf("before the restore, RB shows %d attempts and %d ops: want B confirmed", len(w.Attempts), len(w.Ops))
	}
	cadre.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		if r.Path() == "/v1/sync/pull" {
			return nil, fmt.Errorf("%w: pull lost", faultnet.ErrInjected)
		}
		return next()
	})
	opC, attC := cadre.record(t, ids["RC"], syncproto.OutcomeUnreachable, false)
	if _, err := cadre.c.Sync(ctx); err == nil {
		t.Fatal("sync with pulls failing succeeded")
	}
	opD, attD := cadre.record(t, ids["RD"], syncproto.OutcomeUnreachable, false)
	states := map[string]string{}
	for _, op := range cadre.c.Ops() {
		states[op.OpID] = op.State
	}
	if len(states) != 2 || states[opC.OpID] != "applied" || states[opD.OpID] != "pending" {
		t.Fatalf("outbox before the restore: %v, want C applied and D pending", states)
	}

	// The restore: the server stops, the backup is restored into a new
	// directory (a new incarnation), a server starts on it.
	cadre.net.SetHook(nil)
	info := ct.restore(t, tarball, cadre)
	if inc := ct.srv.Store.Incarnation(); fmt.Sprintf("%x", inc) == info.Backup.Incarnation {
		t.Fatal("the restored store kept the backup's incarnation")
	}

	rep, err := cadre.c.Sync(ctx)
	if rotate {
		if !errors.Is(err, clientsdk.ErrNotLoggedIn) {
			t.Fatalf("sync after the restore: %v, want signed out: the refresh token is newer than the backup", err)
		}
		if !rep.Reset {
			t.Error("the sync that signed the device out did not report the reset it pulled")
		}
		if _, err := cadre.c.Login(ctx, "a1", servertest.CityPassword); err != nil {
			t.Fatalf("sign in again: %v", err)
		}
		cadre.mustSync(t)
	} else {
		if err != nil {
			t.Fatalf("sync after the restore: %v (requests %v)", err, requestLines(cadre.net.History()))
		}
		if !rep.Reset {
			t.Error("the sync after the restore did not reset")
		}
	}
	if h := requestLines(cadre.net.History()); len(h) == 0 || h[0] != "sync/push 409 out_of_order" {
		t.Errorf("requests after the restore %v: want the restored server's 409 first", h)
	}
	if rep.Resent != 1 {
		t.Errorf("the sync after the restore sent %d ops again from the journal, want 1 (B)", rep.Resent)
	}
	if ops := cadre.c.Ops(); len(ops) != 0 {
		t.Errorf("ops left after the restore: %+v", ops)
	}
	if rej := cadre.c.Rejected(); len(rej) != 0 {
		t.Errorf("ops rejected after the restore: %+v", rej)
	}

	// The server's log: A, B, C and D once each, B, C and D after A in
	// the order they were made.
	log := requireOnceInLog(t, ct.srv, opIDs(opA, opB, opC, opD))
	var seqs []uint64
	for _, op := range []clientsdk.OpStatus{opA, opB, opC, opD} {
		if es := log[op.OpID]; len(es) == 1 {
			seqs = append(seqs, es[0].Seq)
		}
	}
	if !slices.IsSorted(seqs) {
		t.Errorf("A, B, C, D at log seqs %v: want them in the order they were made", seqs)
	}
	ct.requireAttemptsOnce(t, attA, attB, attC, attD)
	if w, _ := cadre.c.Warning(ids["RB"]); len(w.Attempts) != 1 || w.Attempts[0].ID != attB || len(w.Ops) != 0 {
		t.Errorf("after the restore the device shows %d attempts and %d ops on RB: want B's attempt, confirmed", len(w.Attempts), len(w.Ops))
	}
	ct.requireHoldsScope(t, cadre.c, cadre.user)
}
