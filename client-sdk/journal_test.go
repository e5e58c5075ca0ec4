package clientsdk_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/internal/testfs"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The journal keeps the ops a pull confirmed, so that a server restored
// from an older backup gets them again (TestRestore_SDKSync shows the main
// case). These tests show its limits: the retention window and the cap, a
// crash at any step of the sync that sends them again, and that nothing
// but a restore sends anything again.

func journalIDs(ops []localstore.JournalOp) []string {
	ids := make([]string, len(ops))
	for i, j := range ops {
		ids[i] = j.Op.ID
	}
	return ids
}

// TestJournal_WindowAndCap: an op confirmed longer ago than
// JournalRetention, or pushed out by JournalMax newer ones, is no longer on
// the phone; a restore of a backup older than it loses it. The ops still
// in the journal are sent again, once each.
func TestJournal_WindowAndCap(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("WA", servertest.UnitVillA1), row("WB", servertest.UnitVillA1), row("WC", servertest.UnitVillA1))
	sdkClock := &fakeclock.Offset{}
	cadre := ct.newDevice(t, "a1", 80, func(o *clientsdk.Options) {
		o.Now, o.JournalRetention, o.JournalMax = sdkClock.Now, 14*24*time.Hour, 3
	})
	cadre.mustSync(t)
	opA, _ := cadre.record(t, ids["WA"], syncproto.OutcomeUnreachable, false)
	cadre.mustSync(t)
	tarball := ct.backup(t)

	opB, _ := cadre.record(t, ids["WB"], syncproto.OutcomeUnreachable, false)
	cadre.mustSync(t)
	if got := journalIDs(cadre.journal(t)); !slices.Equal(got, opIDs(opA, opB)) {
		t.Fatalf("journal %v, want A and B", got)
	}
	// Fifteen days on (both clocks, so tokens and op times agree), four
	// more ops are confirmed: A and B leave the window, C1 the cap.
	sdkClock.Add(15 * 24 * time.Hour)
	ct.clock.Add(15 * 24 * time.Hour)
	var cs []clientsdk.OpStatus
	for range 3 {
		op, _ := cadre.record(t, ids["WC"], syncproto.OutcomeUnreachable, false)
		cs = append(cs, op)
	}
	// C4 carries a photo: uploaded, then deleted from the phone.
	photo := writePhoto(t, 800, 1)
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	photoID := hex.EncodeToString(sum[:])
	op, err := cadre.c.RecordAttempt(ids["WC"], clientsdk.Attempt{Method: syncproto.MethodVisit, Outcome: syncproto.OutcomeUnreachable, Photos: []string{photo}})
	if err != nil {
		t.Fatal(err)
	}
	cs = append(cs, op)
	if rep := cadre.mustSync(t); rep.Photos != 1 {
		t.Fatalf("uploaded %d photos, want C4's", rep.Photos)
	}
	if got, want := journalIDs(cadre.journal(t)), opIDs(cs[1:]...); !slices.Equal(got, want) {
		t.Fatalf("journal %v, want C2, C3, C4 %v", got, want)
	}

	ct.restore(t, tarball, cadre)
	rep := cadre.syncSignedIn(t)
	if !rep.Reset || rep.Resent != 3 {
		t.Errorf("sync after the restore: reset %v, %d sent again; want a reset and C2, C3, C4", rep.Reset, rep.Resent)
	}
	requireOnceInLog(t, ct.srv, opIDs(opA, cs[1], cs[2], cs[3]))
	logged := opsInLog(t, ct.srv)
	for name, op := range map[string]clientsdk.OpStatus{"B (out of the window)": opB, "C1 (past the cap)": cs[0]} {
		if n := len(logged[op.OpID]); n != 0 {
			t.Errorf("op %s is in the restored log %d times: it was no longer on the phone", name, n)
		}
	}
	if ops := cadre.c.Ops(); len(ops) != 0 {
		t.Errorf("ops left after the restore: %+v", ops)
	}
	// The phone no longer has C4's photo: the server, which lost it with
	// the restore, shows it missing.
	for _, o := range cadre.net.History() {
		if strings.Contains(o.Path, "/blobs/") {
			t.Errorf("after the restore the phone sent %s: it had no photo left", o.Path)
		}
	}
	if w, _ := cadre.c.Warning(ids["WC"]); !slices.Contains(w.MissingPhotos, photoID) {
		t.Errorf("after the restore WC lists missing photos %v, want C4's %s", w.MissingPhotos, photoID)
	}
	ct.requireHoldsScope(t, cadre.c, cadre.user)
}

// TestJournal_DeviceNewerThanBackup: a phone first signed in after the
// backup is unknown to the restored server, which refuses its token's
// requests; signed in again, it is registered anew with no ops and sends
// its whole journal again.
func TestJournal_DeviceNewerThanBackup(t *testing.T) {
	ctx := context.Background()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("NA", servertest.UnitVillA1), row("NB", servertest.UnitVillA1))
	tarball := ct.backup(t)
	d := ct.newDevice(t, "a1", 85, nil)
	d.mustSync(t)
	opA, attA := d.record(t, ids["NA"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)
	opB, attB := d.record(t, ids["NB"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)

	ct.restore(t, tarball, d)
	if _, err := d.c.Sync(ctx); syncproto.ErrorCode(err) != syncproto.CodeForbidden {
		t.Fatalf("sync of a device the restored server does not know: %v, want forbidden", err)
	}
	if _, err := d.c.Login(ctx, "a1", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	rep := d.mustSync(t)
	if rep.Resent != 2 {
		t.Errorf("sent %d ops again from the journal, want A and B", rep.Resent)
	}
	book := &crashBook{ops: opIDs(opA, opB), attempts: []string{attA, attB}}
	book.checkAll(t, ct, d)
}

// TestJournal_NoRestoreSendsNothing: resets for other reasons than a
// restore send nothing again, and a new user or a revocation leaves no
// journal behind, not even in the file's free pages.
func TestJournal_NoRestoreSendsNothing(t *testing.T) {
	ctx := context.Background()
	t.Run("ScopeChange", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t, row("SA", servertest.UnitVillA1), row("SB", servertest.UnitVillA2))
		lead := ct.newDevice(t, "leadA", 81, nil)
		lead.mustSync(t)
		var ops []clientsdk.OpStatus
		for _, ext := range []string{"SA", "SB"} {
			op, err := lead.c.Escalate(ids[ext], "需要协助")
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op)
		}
		lead.mustSync(t)
		if n := len(lead.journal(t)); n != 2 {
			t.Fatalf("journal holds %d ops, want 2", n)
		}
		// leadA moves to township B: the next pull resets to the new scope.
		i := slices.IndexFunc(servertest.CityUsers, func(u syncproto.UserInput) bool { return u.Username == "leadA" })
		u := servertest.CityUsers[i]
		u.Unit = servertest.UnitTownB
		if _, err := ct.srv.Admin(t).UpsertUsers(ctx, []syncproto.UserInput{u}); err != nil {
			t.Fatal(err)
		}
		rep := lead.mustSync(t)
		if !rep.Reset || rep.Resent != 0 || rep.Pushed != 0 {
			t.Errorf("sync after the move: reset %v, %d sent again, %d pushed; want a reset and nothing sent", rep.Reset, rep.Resent, rep.Pushed)
		}
		requireOnceInLog(t, ct.srv, opIDs(ops...))
		// The reset brought township B's warnings: SA and SB left the
		// phone, and their ops left the journal with them.
		if n := len(lead.c.Warnings(clientsdk.Filter{})); n != 0 {
			t.Fatalf("leadA holds %d warnings after moving to township B, want 0", n)
		}
		if j := lead.journal(t); len(j) != 0 {
			t.Errorf("journal holds %v after the reset took SA and SB away, want nothing", journalIDs(j))
		}
	})
	t.Run("AnotherUser", func(t *testing.T) {
		_, d, sealed := oneJournaled(t, 82)
		if err := d.c.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		d.user = "a2x"
		signIn(t, d.c, "a2x")
		d.mustSync(t)
		if j := d.journal(t); len(j) != 0 {
			t.Errorf("another user's device holds %d journal ops of the last", len(j))
		}
		d.close()
		requireNotInFile(t, d.dir, sealed)
	})
	t.Run("RevokedWithWipe", func(t *testing.T) {
		ct, d, sealed := oneJournaled(t, 83)
		if _, err := ct.srv.Admin(t).RevokeDevice(ctx, d.c.DeviceID(), true); err != nil {
			t.Fatal(err)
		}
		if _, err := d.c.Sync(ctx); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync after the revocation: %v", err)
		}
		if j := d.journal(t); len(j) != 0 {
			t.Errorf("a wiped device holds %d journal ops", len(j))
		}
		d.close()
		requireNotInFile(t, d.dir, sealed)
	})
}

// oneJournaled starts a city and a device of a1 (its network seeded with
// seed) with one op in its journal, and returns the op's sealed bytes in
// the device's file.
func oneJournaled(t *testing.T, seed uint64) (*city, *device, map[string][]byte) {
	t.Helper()
	ct := newCity(t)
	ids := ct.importWarnings(t, row("JA", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", seed, nil)
	d.mustSync(t)
	d.record(t, ids["JA"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)
	sealed := d.sealedJournal(t)
	if len(sealed) != 1 {
		t.Fatalf("journal holds %d sealed ops, want 1", len(sealed))
	}
	return ct, d, sealed
}

// TestJournal_CrashEveryStep: the sync after a restore is stopped at each
// of its steps in turn, before the request and after the answer; the
// folder is opened again and synced clean. Every op the device made ends in
// the restored server's log exactly once: the move from the journal to the
// outbox happens once or not at all.
//
// Pending: B is in the journal, C acknowledged, D never sent: the push
// meets 409 first. OnlyConfirmed: only B, in the journal, and an empty
// outbox: the pull is what shows the server lacks it.
func TestJournal_CrashEveryStep(t *testing.T) {
	t.Run("Pending", func(t *testing.T) { testJournalCrashEveryStep(t, true) })
	t.Run("OnlyConfirmed", func(t *testing.T) { testJournalCrashEveryStep(t, false) })
}

func testJournalCrashEveryStep(t *testing.T, pending bool) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("CA", servertest.UnitVillA1), row("CB", servertest.UnitVillA1),
		row("CC", servertest.UnitVillA1), row("CD", servertest.UnitVillA1))
	d := ct.newDevice(t, "a1", 84, nil)
	d.mustSync(t)
	opA, attA := d.record(t, ids["CA"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)
	tarball := ct.backup(t)
	opB, attB := d.record(t, ids["CB"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)
	ops, attempts := []clientsdk.OpStatus{opA, opB}, []string{attA, attB}
	if pending {
		d.net.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
			if r.Path() == "/v1/sync/pull" {
				return nil, fmt.Errorf("%w: pull lost", faultnet.ErrInjected)
			}
			return next()
		})
		opC, attC := d.record(t, ids["CC"], syncproto.OutcomeUnreachable, false)
		if _, err := d.c.Sync(context.Background()); err == nil {
			t.Fatal("sync with pulls failing succeeded")
		}
		d.net.SetHook(nil)
		opD, attD := d.record(t, ids["CD"], syncproto.OutcomeUnreachable, false)
		ops, attempts = append(ops, opC, opD), append(attempts, attC, attD)
	}
	d.close()
	snapshot := t.TempDir()
	testfs.CopyTree(t, d.dir, snapshot)

	book := &crashBook{ops: opIDs(ops...), attempts: attempts}
	steps := map[bool]int{}
	for _, after := range []bool{false, true} {
		for n := 1; ; n++ {
			if n > 20 {
				t.Fatalf("a sync after the restore with more than 20 steps")
			}
			ct.restore(t, tarball, d)
			d.dir = t.TempDir()
			testfs.CopyTree(t, snapshot, d.dir)
			d.open(t)
			cp := &crashPoint{step: n, after: after, panics: n%2 == 1}
			crashed := cp.syncUntilCrash(t, d)
			d.close()
			d.open(t)
			book.cleanSync(t, d)
			book.checkAll(t, ct, d)
			if t.Failed() {
				t.Fatalf("after a crash at step %d (after the answer: %v, panic: %v)", n, after, cp.panics)
			}
			d.close()
			ct.stop(t)
			if !crashed {
				break
			}
			steps[after] = n
		}
	}
	t.Logf("crashed at up to %v steps; %d logins lost to a crash after a refresh", steps, book.relogins)
	for after, n := range steps {
		if n < 3 {
			t.Errorf("after=%v: the sync after the restore had only %d steps: the test crashed too few places", after, n)
		}
	}
}

// TestJournal_ForgetsWarningsThatLeft: a warning reassigned away from the
// device takes its confirmed ops out of the journal, as a remove takes the
// warning's personal data off the phone; the ops on warnings it still
// holds stay, and a restore would send only those again. An op confirmed
// by the same pull that removes its warning is not journaled at all.
func TestJournal_ForgetsWarningsThatLeft(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("LA", servertest.UnitVillA2), row("LB", servertest.UnitVillA2), row("LC", servertest.UnitVillA2))
	lead := ct.newDevice(t, "leadA", 90, nil)
	lead.mustSync(t)
	for _, ext := range []string{"LA", "LB", "LC"} {
		if _, err := lead.c.Assign(ids[ext], ct.ids["a2x"]); err != nil {
			t.Fatal(err)
		}
	}
	lead.mustSync(t)
	d := ct.newDevice(t, "a2x", 91, nil)
	d.mustSync(t)
	d.record(t, ids["LA"], syncproto.OutcomeUnreachable, false)
	d.record(t, ids["LB"], syncproto.OutcomeUnreachable, false)
	d.mustSync(t)
	j := d.journal(t)
	if len(j) != 2 {
		t.Fatalf("journal holds %d ops, want 2", len(j))
	}
	var laSeq uint64
	for _, op := range j {
		if op.Op.WarningID == ids["LA"] {
			laSeq = op.Op.ClientSeq
		}
	}
	laKey := fmt.Sprintf("journal op %016x", laSeq)
	laSealed, ok := d.sealedJournal(t)[laKey]
	if !ok {
		t.Fatalf("no sealed journal entry %s", laKey)
	}

	// LA goes to another cadre: the pull removes it and its op.
	if _, err := lead.c.Assign(ids["LA"], ct.ids["a2y"]); err != nil {
		t.Fatal(err)
	}
	lead.mustSync(t)
	d.mustSync(t)
	j = d.journal(t)
	if len(j) != 1 || j[0].Op.WarningID != ids["LB"] {
		t.Fatalf("journal after LA left: %v, want LB's op only", journalIDs(j))
	}
	d.close()
	requireNotInFile(t, d.dir, map[string][]byte{laKey: laSealed})
	d.open(t)

	// LC: the cadre records while the lead reassigns it; the push is
	// applied, and the pull that confirms it also removes LC.
	d.record(t, ids["LC"], syncproto.OutcomeUnreachable, false)
	if _, err := lead.c.Assign(ids["LC"], ct.ids["a2y"]); err != nil {
		t.Fatal(err)
	}
	lead.mustSync(t)
	d.mustSync(t)
	if j := d.journal(t); len(j) != 1 || j[0].Op.WarningID != ids["LB"] {
		t.Fatalf("journal after LC left: %v, want LB's op only", journalIDs(j))
	}
}
