package clientsdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
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
// restored server has its ops up to A only); it numbers C and D again
// from there and sends them, then its pull resets (new incarnation) and
// takes the server's state as new. A, C and D end in the server's log once
// each. B is gone: the SDK keeps an op only until a pull confirms it, so
// what the device saw confirmed after the backup is lost with the restore
// (the device's view drops it too, as the reset brings the server's
// state). That is the cost of restoring a backup: every op confirmed after
// it, on every device, and every feed import and admin change after it.
//
// TokenRotatedAfterBackup: the device's refresh token rotated after the
// backup, so the restored server does not know the one it holds: the
// forced refresh after the reset signs it out. Its ops were pushed before
// that; it signs in again and carries on.
func TestRestore_SDKSync(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		name := "TokenFromBeforeBackup"
		if rotate {
			name = "TokenRotatedAfterBackup"
		}
		t.Run(name, func(t *testing.T) { testRestoreSDKSync(t, rotate) })
	}
}

func testRestoreSDKSync(t *testing.T, rotate bool) {
	ctx := context.Background()
	ct := ftStartCity(t, "")
	ids := ct.importRows(t, ftFeedRow("RA", servertest.UnitVillA1), ftFeedRow("RB", servertest.UnitVillA1),
		ftFeedRow("RC", servertest.UnitVillA1), ftFeedRow("RD", servertest.UnitVillA1))
	cadre := ct.newDevice(t, "a1", 70, nil)
	cadre.mustSync(t)
	opA, attA := cadre.record(t, ids["RA"], syncproto.OutcomeUnreachable, false)
	cadre.mustSync(t)

	var tarball []byte
	admin := ct.srv.Admin(t)
	if err := admin.DoRaw(ctx, http.MethodGet, "/v1/admin/backup", "", nil, &tarball); err != nil {
		t.Fatalf("backup: %v", err)
	}

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
	ct.stop()
	dir := filepath.Join(t.TempDir(), "restored")
	info, err := store.Restore(ctx, bytes.NewReader(tarball), dir, store.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored, err := servertest.Open(servertest.Options{Dir: dir, Now: ct.clock.Now})
	if err != nil {
		t.Fatalf("start the restored server: %v", err)
	}
	t.Cleanup(func() { _ = restored.Close() })
	if inc := restored.Store.Incarnation(); fmt.Sprintf("%x", inc) == info.Backup.Incarnation {
		t.Fatal("the restored store kept the backup's incarnation")
	}
	ct.srv = restored
	cadre.net.SetHook(nil)
	if err := cadre.net.Retarget(restored.URL); err != nil {
		t.Fatal(err)
	}
	cadre.net.ResetHistory()

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
			t.Fatalf("sync after the restore: %v (requests %v)", err, ftPaths(cadre.net.History()))
		}
		if !rep.Reset {
			t.Error("the sync after the restore did not reset")
		}
	}
	if h := ftPaths(cadre.net.History()); len(h) == 0 || h[0] != "sync/push 409 out_of_order" {
		t.Errorf("requests after the restore %v: want the restored server's 409 first", h)
	}
	if ops := cadre.c.Ops(); len(ops) != 0 {
		t.Errorf("ops left after the restore: %+v", ops)
	}
	if rej := cadre.c.Rejected(); len(rej) != 0 {
		t.Errorf("ops rejected after the restore: %+v", rej)
	}

	// The server's log: A, C and D once each; B not at all.
	ftCheckOnceInLog(t, restored, ftOpIDs(opA, opC, opD))
	if es := ftOpsInLog(t, restored)[opB.OpID]; len(es) != 0 {
		t.Errorf("op B is in the restored log %d times: it was confirmed after the backup and the SDK had dropped it", len(es))
	}
	counts := ct.attemptCounts(t)
	for att, want := range map[string]int{attA: 1, attB: 0, attC: 1, attD: 1} {
		if counts[att] != want {
			t.Errorf("attempt %s on the server %d times, want %d", att, counts[att], want)
		}
	}
	if w, _ := cadre.c.Warning(ids["RB"]); len(w.Attempts) != 0 {
		t.Errorf("the device still shows B's attempt on RB after the reset: %d attempts", len(w.Attempts))
	}
	ftCheckHoldsServerState(t, ct, cadre)
}
