package clientsdk_test

// What a device holds when its scope or its cursor stops being what it was:
// a reset (the server's store restored, a cursor made for another scope), a
// user moved to another unit, a warning reassigned away, a device revoked.
// The device must end up holding exactly the server's state for its scope,
// never lose an op it recorded, and keep nothing of a warning that left it:
// not in its lists, and not in its file (bbolt keeps freed pages, so a
// deleted value's sealed bytes stay in the file until the SDK scrubs it).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSDK_Reset: pending ops survive a reset, are pushed before the pull
// and applied once; afterwards the device holds exactly its scope.
func TestSDK_Reset(t *testing.T) {
	t.Run("NewIncarnation", func(t *testing.T) {
		e := newEnv(t)
		ids := e.importWarnings(t,
			row("N1", servertest.UnitVillA1), row("N2", servertest.UnitVillA1),
			row("N3", servertest.UnitVillA2), row("N4", servertest.UnitVillA2), row("N5", servertest.UnitVillA2),
			row("NB", servertest.UnitVillB1))
		rec := &scPathLog{}
		lead, _ := e.scSmallPages(t, t.TempDir(), testKey(t), rec)
		if _, err := lead.Login(context.Background(), "leadA", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, lead)
		scRequireSameAsServer(t, e, lead, "leadA")

		// Offline, the lead escalates, records an attempt and assigns.
		attempt, opIDs := scRecordPending(t, lead, ids)
		// Meanwhile the center sends N5 to the other township and a new
		// warning arrives.
		e.scCenterOp(t, syncproto.OpDispatched, ids["N5"], syncproto.OpBody{Unit: servertest.UnitVillB1})
		ids2 := e.importWarnings(t, row("N6", servertest.UnitVillA1))
		// The server is restored: every cursor it made is now foreign.
		if err := e.srv.Store.NewIncarnation(context.Background()); err != nil {
			t.Fatal(err)
		}

		rec.reset()
		rep := mustSync(t, lead)
		if !rep.Reset || rep.Pushed != 3 || rep.Applied != 3 || rep.Rejected != 0 {
			t.Fatalf("report %+v; want a reset with 3 ops pushed and applied", rep)
		}
		rec.requirePushBeforePull(t)
		e.scRequireAppliedOnce(t, ids, attempt, opIDs)
		scRequireSameAsServer(t, e, lead, "leadA")
		if _, ok := lead.Warning(ids["N5"]); ok {
			t.Error("N5 left the scope but is still listed")
		}
		if _, ok := lead.Warning(ids2["N6"]); !ok {
			t.Error("N6 arrived during the outage but is not listed")
		}
		if ops := lead.Ops(); len(ops) != 0 {
			t.Errorf("ops left after the reset sync: %+v", ops)
		}
		// Once more: nothing is sent again, nothing changes.
		if rep := mustSync(t, lead); rep.Pushed != 0 || rep.Reset {
			t.Errorf("second sync %+v", rep)
		}
		e.scRequireAppliedOnce(t, ids, attempt, opIDs)
	})

	t.Run("CursorOfAnotherScope", func(t *testing.T) {
		e := newEnv(t)
		ids := e.importWarnings(t,
			row("N1", servertest.UnitVillA1), row("N2", servertest.UnitVillA1),
			row("N3", servertest.UnitVillA2), row("N4", servertest.UnitVillA2),
			row("CB", servertest.UnitVillB1))
		dir, key := t.TempDir(), testKey(t)
		rec := &scPathLog{}
		lead, _ := e.scSmallPages(t, dir, key, rec)
		if _, err := lead.Login(context.Background(), "leadA", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, lead)
		attempt, opIDs := scRecordPending(t, lead, ids)
		lead.Close()

		// The folder now holds township B's cursor and one of its
		// warnings: state made for another scope.
		foreignCursor, foreign := e.scHeadOf(t, "leadB")
		fw := foreign[ids["CB"]]
		if fw == nil {
			t.Fatalf("leadB does not hold CB")
		}
		local, err := localstore.Open(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		err = local.Update(func(tx *localstore.Tx) error {
			st, err := tx.State()
			if err != nil {
				return err
			}
			st.Cursor = foreignCursor
			if err := tx.SetState(st); err != nil {
				return err
			}
			return tx.PutWarning(fw)
		})
		if cerr := local.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}

		lead, _ = e.scSmallPages(t, dir, key, rec)
		if _, ok := lead.Warning(ids["CB"]); !ok {
			t.Fatal("the planted foreign warning is not listed before the sync")
		}
		rec.reset()
		rep := mustSync(t, lead)
		if !rep.Reset || rep.Pushed != 3 || rep.Applied != 3 || rep.Rejected != 0 {
			t.Fatalf("report %+v; want a reset with 3 ops pushed and applied", rep)
		}
		rec.requirePushBeforePull(t)
		e.scRequireAppliedOnce(t, ids, attempt, opIDs)
		scRequireSameAsServer(t, e, lead, "leadA")
		if _, ok := lead.Warning(ids["CB"]); ok {
			t.Error("the other scope's warning survived the reset")
		}
	})
}

// scRecordPending records, without syncing, an escalation of N1, an attempt
// on N3 and the assignment of N4 to a2x, and returns the attempt's id and
// the three ops' ids.
func scRecordPending(t *testing.T, lead *clientsdk.Client, ids map[string]string) (string, []string) {
	t.Helper()
	if _, err := lead.Escalate(ids["N1"], "需要派出所协助"); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.RecordAttempt(ids["N3"], visit(syncproto.OutcomeRefused)); err != nil {
		t.Fatal(err)
	}
	cadres := lead.Cadres()
	i := slices.IndexFunc(cadres, func(u syncproto.DirectoryUser) bool { return u.Username == "a2x" })
	if i < 0 {
		t.Fatalf("a2x is not in the lead's directory: %+v", cadres)
	}
	if _, err := lead.Assign(ids["N4"], cadres[i].ID); err != nil {
		t.Fatal(err)
	}
	ops := lead.Ops()
	if len(ops) != 3 || ops[0].State != "pending" {
		t.Fatalf("outbox %+v", ops)
	}
	n3, _ := lead.Warning(ids["N3"])
	if len(n3.Attempts) != 1 || len(n3.Ops) != 1 {
		t.Fatalf("offline view of N3: %d attempts", len(n3.Attempts))
	}
	return n3.Attempts[0].ID, []string{ops[0].OpID, ops[1].OpID, ops[2].OpID}
}

// scRequireAppliedOnce checks on the server that scRecordPending's ops each
// took effect exactly once: one applied entry each in the log, and the
// states they made.
func (e *env) scRequireAppliedOnce(t *testing.T, ids map[string]string, attemptID string, opIDs []string) {
	t.Helper()
	inLog := map[string][]string{}
	err := e.srv.Store.EachLogEntry(func(_ uint64, entry *store.LogEntry) error {
		if entry.Op != nil && entry.Result != nil {
			inLog[entry.Op.ID] = append(inLog[entry.Op.ID], entry.Result.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the server's log: %v", err)
	}
	for _, id := range opIDs {
		if got := inLog[id]; len(got) != 1 || got[0] != syncproto.StatusApplied {
			t.Errorf("op %s is in the server's log as %v; want applied, once", id, got)
		}
	}
	n1, err := e.srv.Store.Warning(ids["N1"])
	if err != nil || n1 == nil || !n1.Escalated {
		t.Errorf("N1 on the server: %+v %v; want escalated", n1, err)
	}
	n3, err := e.srv.Store.Warning(ids["N3"])
	if err != nil || n3 == nil {
		t.Fatalf("N3: %v", err)
	}
	if len(n3.Attempts) != 1 || n3.Attempts[0].ID != attemptID {
		t.Errorf("N3 holds %d attempts, want exactly the one recorded offline", len(n3.Attempts))
	}
	n4, err := e.srv.Store.Warning(ids["N4"])
	if err != nil || n4 == nil || n4.Assignee != e.ids["a2x"] || n4.Status != syncproto.WarningAssigned {
		t.Errorf("N4 on the server: %+v %v; want assigned to a2x", n4, err)
	}
}

// TestSDK_ScopeChange: a user moved to another unit ends up holding exactly
// the new scope, and nothing of the old one stays in the file.
func TestSDK_ScopeChange(t *testing.T) {
	t.Run("LeadToAnotherTownship", func(t *testing.T) {
		e := newEnv(t)
		oldIDs := e.scImportMany(t, "SA", 40, servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitTownA)
		newIDs := e.scImportMany(t, "SB", 4, servertest.UnitVillB1, servertest.UnitTownB)
		dir, key := t.TempDir(), testKey(t)
		lead := e.phone(t, dir, key, nil)
		if _, err := lead.Login(context.Background(), "leadA", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, lead)
		scRequireListed(t, lead, oldIDs...)
		lead.Close()
		old := scSealedWarnings(t, dir)
		if len(old) != len(oldIDs) {
			t.Fatalf("captured %d sealed warnings, want %d", len(old), len(oldIDs))
		}
		lead = e.phone(t, dir, key, nil)

		e.scMoveUser(t, "leadA", servertest.UnitTownB)
		rep := mustSync(t, lead)
		if !rep.Reset {
			t.Errorf("report %+v; want a reset for the new scope", rep)
		}
		scRequireSameAsServer(t, e, lead, "leadA")
		scRequireListed(t, lead, newIDs...)
		for _, u := range lead.Units() {
			if !strings.HasPrefix(u.Code, servertest.UnitTownB) {
				t.Errorf("directory still holds unit %s of the old township", u.Code)
			}
		}
		for _, u := range lead.Cadres() {
			if u.Unit != servertest.UnitVillB1 {
				t.Errorf("directory still holds cadre %s of %s", u.Username, u.Unit)
			}
		}
		lead.Close()
		scRequireNotInFile(t, dir, old)
	})

	t.Run("CadreToAnotherVillage", func(t *testing.T) {
		// A village cadre's scope is what is assigned to them, and a move
		// reassigns nothing: the device keeps exactly what the server
		// still assigns to them, and gets new work at the new village.
		e := newEnv(t)
		ids := e.importWarnings(t, row("V1", servertest.UnitVillA2), row("V2", servertest.UnitVillA2), row("V3", servertest.UnitVillA1))
		e.scLeadOp(t, syncproto.OpAssigned, ids["V1"], syncproto.OpBody{Assignee: e.ids["a2x"]})
		cadre := e.loggedIn(t, "a2x")
		scRequireListed(t, cadre, ids["V1"])
		e.scMoveUser(t, "a2x", servertest.UnitVillB1)
		mustSync(t, cadre)
		scRequireSameAsServer(t, e, cadre, "a2x")
		v4 := e.importWarnings(t, row("V4", servertest.UnitVillB1))["V4"]
		e.scLeadBOp(t, syncproto.OpAssigned, v4, syncproto.OpBody{Assignee: e.ids["a2x"]})
		mustSync(t, cadre)
		scRequireSameAsServer(t, e, cadre, "a2x")
		scRequireListed(t, cadre, ids["V1"], v4)
	})

	t.Run("CadreToTownship", func(t *testing.T) {
		// A cadre made a township lead: from "assigned to me" to "all of
		// the township", a new scope.
		e := newEnv(t)
		mine := e.scImportMany(t, "T", 40, servertest.UnitVillA2)
		e.scAssignAll(t, "a2x", mine...)
		townB := e.scImportMany(t, "TB", 2, servertest.UnitVillB1)
		dir, key := t.TempDir(), testKey(t)
		cadre := e.phone(t, dir, key, nil)
		if _, err := cadre.Login(context.Background(), "a2x", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, cadre)
		scRequireListed(t, cadre, mine...)
		cadre.Close()
		old := scSealedWarnings(t, dir)
		cadre = e.phone(t, dir, key, nil)

		e.scMoveUser(t, "a2x", servertest.UnitTownB)
		if rep := mustSync(t, cadre); !rep.Reset {
			t.Errorf("report %+v; want a reset for the new scope", rep)
		}
		scRequireSameAsServer(t, e, cadre, "a2x")
		scRequireListed(t, cadre, townB...)
		cadre.Close()
		scRequireNotInFile(t, dir, old)
	})
}

// TestSDK_Remove: warnings reassigned away leave the cadre's list and its
// file; the others stay, readable.
//
// bbolt hands a freed page to the next commit, which overwrites it whole:
// one removed warning's old page is usually gone by the end of the same
// Sync even without a scrub. Two removes from a scope of 40 free more pages
// than the commits after them reuse, so this test fails without Scrub.
func TestSDK_Remove(t *testing.T) {
	e := newEnv(t)
	ids := e.scImportMany(t, "M", 40, servertest.UnitVillA2)
	e.scAssignAll(t, "a2x", ids...)
	// The first and the middle warning: on two different leaf pages.
	gone := []string{ids[0], ids[20]}

	dir, key := t.TempDir(), testKey(t)
	cadre := e.phone(t, dir, key, nil)
	if _, err := cadre.Login(context.Background(), "a2x", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)
	scRequireListed(t, cadre, ids...)
	cadre.Close()
	sealed := scSealedWarnings(t, dir)
	if len(sealed) != len(ids) {
		t.Fatalf("captured %d sealed warnings, want %d", len(sealed), len(ids))
	}
	scRequireInFile(t, dir, sealed)
	cadre = e.phone(t, dir, key, nil)

	e.scAssignAll(t, "a2y", gone...)
	rep := mustSync(t, cadre)
	if rep.Removed != len(gone) {
		t.Errorf("report %+v; want %d removes", rep, len(gone))
	}
	for _, id := range gone {
		if _, ok := cadre.Warning(id); ok {
			t.Errorf("%s is still listed after its remove", id)
		}
	}
	scRequireSameAsServer(t, e, cadre, "a2x")
	cadre.Close()

	removed, kept := map[string][]byte{}, map[string][]byte{}
	for id, v := range sealed {
		if slices.Contains(gone, id) {
			removed[id] = v
		} else {
			kept[id] = v
		}
	}
	scRequireNotInFile(t, dir, removed)
	scRequireInFile(t, dir, kept)
	cadre = e.phone(t, dir, key, nil)
	if n := len(cadre.Warnings(clientsdk.Filter{})); n != len(ids)-len(gone) {
		t.Errorf("%d warnings after reopening, want %d", n, len(ids)-len(gone))
	}
	for _, id := range ids[1:4] {
		w, ok := cadre.Warning(id)
		if !ok || !strings.HasPrefix(w.Name, "测试M") || w.Phone != "13800001234" {
			t.Errorf("%s after reopening: %v %+v", id, ok, w.Warning)
		}
	}
}

// TestSDK_Revoke: a revoked device stops syncing; with wipe it keeps only
// its unsent ops, for hand-over.
func TestSDK_Revoke(t *testing.T) {
	t.Run("Wipe", func(t *testing.T) {
		e := newEnv(t)
		ids := e.importWarnings(t, row("W1", servertest.UnitVillA1), row("W2", servertest.UnitVillA1), row("W3", servertest.UnitVillA1))
		dir, key := t.TempDir(), testKey(t)
		c := e.phone(t, dir, key, nil)
		if _, err := c.Login(context.Background(), "a1", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, c)
		scRequireListed(t, c, ids["W1"], ids["W2"], ids["W3"])
		c.Close()
		sealed := scSealedWarnings(t, dir)
		if len(sealed) != 3 {
			t.Fatalf("captured %d sealed warnings, want 3", len(sealed))
		}
		c = e.phone(t, dir, key, nil)
		// Two attempts recorded offline, never sent.
		for _, ext := range []string{"W1", "W2"} {
			if _, err := c.RecordAttempt(ids[ext], visit(syncproto.OutcomeDissuaded)); err != nil {
				t.Fatal(err)
			}
		}
		unsent := c.Ops()
		if len(unsent) != 2 {
			t.Fatalf("outbox %+v", unsent)
		}

		if _, err := e.srv.Admin(t).RevokeDevice(context.Background(), c.DeviceID(), true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync after revoke: %v; want ErrRevoked", err)
		}
		scRequireWiped(t, c, unsent)
		for _, ext := range []string{"W1", "W2", "W3"} {
			if n := len(e.scServerWarning(t, ids[ext]).Attempts); n != 0 {
				t.Errorf("%s holds %d attempts on the server; the revoked device's ops must not be applied", ext, n)
			}
		}
		c.Close()
		scRequireNotInFile(t, dir, sealed)

		c = e.phone(t, dir, key, nil)
		scRequireWiped(t, c, unsent)
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync after reopening: %v; want ErrRevoked", err)
		}
		if _, err := c.Escalate(ids["W3"], "x"); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("a new op on a revoked device: %v; want ErrRevoked", err)
		}
	})

	t.Run("NoWipe", func(t *testing.T) {
		e := newEnv(t)
		ids := e.importWarnings(t, row("K1", servertest.UnitVillA1), row("K2", servertest.UnitVillA1))
		dir, key := t.TempDir(), testKey(t)
		c := e.phone(t, dir, key, nil)
		if _, err := c.Login(context.Background(), "a1", servertest.CityPassword); err != nil {
			t.Fatal(err)
		}
		mustSync(t, c)
		if _, err := c.RecordAttempt(ids["K1"], visit(syncproto.OutcomeRefused)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.Admin(t).RevokeDevice(context.Background(), c.DeviceID(), false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync after revoke: %v; want ErrRevoked", err)
		}
		requireKept := func(c *clientsdk.Client) {
			t.Helper()
			st := c.Status()
			if !st.Revoked || st.Wiped || st.Pending != 1 {
				t.Errorf("status %+v; want revoked, not wiped, 1 pending", st)
			}
			scRequireListed(t, c, ids["K1"], ids["K2"])
			if w, _ := c.Warning(ids["K2"]); w.Name != "测试K2" {
				t.Errorf("K2 unreadable: %+v", w.Warning)
			}
			if w, _ := c.Warning(ids["K1"]); len(w.Ops) != 1 || w.Status != syncproto.WarningInProgress {
				t.Errorf("K1 lost its pending attempt: %s %+v", w.Status, w.Ops)
			}
		}
		requireKept(c)
		c.Close()
		c = e.phone(t, dir, key, nil)
		requireKept(c)
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync after reopening: %v; want ErrRevoked", err)
		}
	})
}

func scRequireWiped(t *testing.T, c *clientsdk.Client, unsent []clientsdk.OpStatus) {
	t.Helper()
	st := c.Status()
	if !st.Revoked || !st.Wiped || st.LoggedIn {
		t.Errorf("status %+v; want revoked, wiped, logged out", st)
	}
	if ws := c.Warnings(clientsdk.Filter{}); len(ws) != 0 {
		t.Errorf("%d warnings listed after a wipe", len(ws))
	}
	if us := c.Units(); len(us) != 0 {
		t.Errorf("%d units listed after a wipe", len(us))
	}
	got := c.HandOver()
	if len(got) != len(unsent) {
		t.Fatalf("hand-over holds %d ops, want the %d unsent", len(got), len(unsent))
	}
	for i, op := range got {
		if op.ID != unsent[i].OpID || op.ClientSeq != unsent[i].ClientSeq || op.WarningID != unsent[i].WarningID {
			t.Errorf("hand-over[%d] = %s seq %d, want %s seq %d", i, op.ID, op.ClientSeq, unsent[i].OpID, unsent[i].ClientSeq)
		}
		if op.Type != syncproto.OpRecorded || op.Body.Outcome != syncproto.OutcomeDissuaded {
			t.Errorf("hand-over[%d] lost its body: %+v", i, op)
		}
	}
}

// --- helpers ---

// scSmallPages opens an SDK that pulls 2 changes a page, so a reset spans
// several pages, with its requests recorded.
func (e *env) scSmallPages(t *testing.T, dir string, key []byte, rec *scPathLog) (*clientsdk.Client, string) {
	t.Helper()
	c, err := clientsdk.Open(dir, clientsdk.Options{
		ServerURL: e.srv.URL, DeviceName: "test phone", Platform: "test", Key: key,
		HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second},
		Retry:      clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 8},
		PullLimit:  2,
	})
	if err != nil {
		t.Fatalf("open sdk: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir
}

// scPathLog records the path of every request it carries.
type scPathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *scPathLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.paths = append(l.paths, r.URL.Path)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (l *scPathLog) reset() {
	l.mu.Lock()
	l.paths = nil
	l.mu.Unlock()
}

// requirePushBeforePull checks that the requests since reset pushed, and
// pushed everything before the first pull.
func (l *scPathLog) requirePushBeforePull(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	firstPull := slices.Index(l.paths, "/v1/sync/pull")
	lastPush := -1
	for i, p := range l.paths {
		if p == "/v1/sync/push" {
			lastPush = i
		}
	}
	if firstPull < 0 || lastPush < 0 || lastPush > firstPull {
		t.Errorf("requests %v; want every push before the first pull", l.paths)
	}
}

// scHeadOf pulls username's whole scope from a new device and returns the
// cursor at its head and the warnings it holds.
func (e *env) scHeadOf(t *testing.T, username string) (string, map[string]*syncproto.Warning) {
	t.Helper()
	d := e.srv.Login(t, username, servertest.CityPassword)
	out := map[string]*syncproto.Warning{}
	cursor := ""
	for {
		resp, err := d.Pull(context.Background(), syncproto.PullRequest{DeviceID: d.ID, Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			t.Fatalf("pull as %s: %v", username, err)
		}
		for _, ch := range resp.Changes {
			if ch.Entity != syncproto.EntityWarning {
				continue
			}
			if w, ok := ch.Data.(*syncproto.Warning); ch.Kind == syncproto.ChangePut && ok {
				out[ch.ID] = w
			} else {
				delete(out, ch.ID)
			}
		}
		cursor = resp.Cursor
		if !resp.More {
			return cursor, out
		}
	}
}

// scRequireSameAsServer checks that c lists exactly the warnings the server
// gives username's scope, each in the server's state.
func scRequireSameAsServer(t *testing.T, e *env, c *clientsdk.Client, username string) {
	t.Helper()
	_, want := e.scHeadOf(t, username)
	got := map[string]*syncproto.Warning{}
	for _, w := range c.Warnings(clientsdk.Filter{}) {
		got[w.ID] = &w.Warning
		if len(w.Ops) > 0 {
			t.Errorf("warning %s still shows %d pending ops", w.ID, len(w.Ops))
		}
	}
	var diffs []string
	for id, sw := range want {
		if w, ok := got[id]; !ok {
			diffs = append(diffs, "missing "+id)
		} else if d := warningDiff(w, sw); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s (-server +device):\n%s", id, d))
		}
	}
	for id := range got {
		if want[id] == nil {
			diffs = append(diffs, "not in scope "+id)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s's device differs from the server's scope:\n%s", username, strings.Join(diffs, "\n"))
	}
}

func scRequireListed(t *testing.T, c *clientsdk.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, ok := c.Warning(id); !ok {
			t.Errorf("warning %s is not listed", id)
		}
	}
}

// scImportMany imports n warnings named prefix1, prefix2 ... spread over
// units in turn, and returns their ids in import order.
func (e *env) scImportMany(t *testing.T, prefix string, n int, units ...string) []string {
	t.Helper()
	rows := make([]syncproto.FeedWarning, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("%s%d", prefix, i+1), units[i%len(units)])
		// A realistic address: sealed records of a few hundred bytes.
		rows[i].Address = fmt.Sprintf("西大街街道天宝路社区%d号楼%d单元%d室", i+1, i%6+1, 100+i)
	}
	byExt := e.importWarnings(t, rows...)
	ids := make([]string, n)
	for i, r := range rows {
		ids[i] = byExt[r.ExternalID]
	}
	return ids
}

// scAssignAll assigns warnings to a village user of township A as leadA, in
// one push.
func (e *env) scAssignAll(t *testing.T, username string, ids ...string) {
	t.Helper()
	d := e.srv.Login(t, "leadA", servertest.CityPassword)
	ops := make([]syncproto.Op, len(ids))
	for i, id := range ids {
		ops[i] = syncproto.Op{
			ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: d.NextSeq(), Type: syncproto.OpAssigned, WarningID: id,
			BaseVersion: e.scServerWarning(t, id).Version, At: time.Now().UTC(), Body: syncproto.OpBody{Assignee: e.ids[username]},
		}
	}
	resp, err := d.Push(context.Background(), syncproto.PushRequest{DeviceID: d.ID, Ops: ops})
	if err != nil {
		t.Fatalf("assign to %s: %v", username, err)
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("assign to %s: %+v", username, r)
		}
	}
}

// scMoveUser moves username to unit through the admin API, keeping the rest.
func (e *env) scMoveUser(t *testing.T, username, unit string) {
	t.Helper()
	i := slices.IndexFunc(servertest.CityUsers, func(u syncproto.UserInput) bool { return u.Username == username })
	u := servertest.CityUsers[i]
	u.Unit = unit
	if _, err := e.srv.Admin(t).UpsertUsers(context.Background(), []syncproto.UserInput{u}); err != nil {
		t.Fatalf("move %s: %v", username, err)
	}
}

// scCenterOp, scLeadOp and scLeadBOp apply one op as center1, leadA or leadB from a
// raw client.
func (e *env) scCenterOp(t *testing.T, typ, warningID string, body syncproto.OpBody) {
	t.Helper()
	e.scRawOp(t, "center1", typ, warningID, body)
}

func (e *env) scLeadOp(t *testing.T, typ, warningID string, body syncproto.OpBody) {
	t.Helper()
	e.scRawOp(t, "leadA", typ, warningID, body)
}

func (e *env) scLeadBOp(t *testing.T, typ, warningID string, body syncproto.OpBody) {
	t.Helper()
	e.scRawOp(t, "leadB", typ, warningID, body)
}

func (e *env) scRawOp(t *testing.T, username, typ, warningID string, body syncproto.OpBody) {
	t.Helper()
	d := e.srv.Login(t, username, servertest.CityPassword)
	w := e.scServerWarning(t, warningID)
	op := syncproto.Op{
		ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: d.NextSeq(), Type: typ, WarningID: warningID,
		BaseVersion: w.Version, At: time.Now().UTC(), Body: body,
	}
	resp, err := d.Push(context.Background(), syncproto.PushRequest{DeviceID: d.ID, Ops: []syncproto.Op{op}})
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("%s %s as %s: %+v %v", typ, warningID, username, resp, err)
	}
}

func (e *env) scServerWarning(t *testing.T, id string) *syncproto.Warning {
	t.Helper()
	w, err := e.srv.Store.Warning(id)
	if err != nil || w == nil {
		t.Fatalf("warning %s on the server: %v", id, err)
	}
	return w
}

// scSealedWarnings reads, from a closed SDK folder, the sealed bytes of every
// warning record in its file.
func scSealedWarnings(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, localstore.FileName), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open the local file read-only (is the SDK closed?): %v", err)
	}
	defer db.Close()
	out := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("warnings"))
		if b == nil {
			return errors.New("no warnings bucket")
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scRequireNotInFile checks that no file of the SDK's folder holds any of the
// sealed records anywhere, free pages included.
func scRequireNotInFile(t *testing.T, dir string, sealed map[string][]byte) {
	t.Helper()
	if len(sealed) == 0 {
		t.Fatal("nothing to look for")
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for id, v := range sealed {
			if bytes.Contains(data, v) {
				t.Errorf("%s still holds the sealed record of warning %s (%d bytes)", filepath.Base(path), id, len(v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// scRequireInFile checks that the SDK's file holds each sealed record: the
// check of scRequireNotInFile can see them.
func scRequireInFile(t *testing.T, dir string, sealed map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, localstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range sealed {
		if !bytes.Contains(data, v) {
			t.Errorf("the file lacks the sealed record of warning %s", id)
		}
	}
}
