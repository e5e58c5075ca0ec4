package clientsdk_test

// What a device holds when its scope or its cursor stops being what it was:
// a reset (the server's store restored, a cursor made for another scope), a
// user moved to another unit, a warning reassigned away, a device revoked.
// The device must end up holding exactly the server's state for its scope,
// never lose an op it recorded, and keep nothing of a warning that left it:
// not in its lists, and not in its file (bbolt keeps freed pages, so a
// deleted value's sealed bytes stay in the file until the SDK scrubs it).

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSDK_Reset: pending ops survive a reset, are pushed before the pull
// and applied once; afterwards the device holds exactly its scope.
func TestSDK_Reset(t *testing.T) {
	t.Run("NewIncarnation", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t,
			row("N1", servertest.UnitVillA1), row("N2", servertest.UnitVillA1),
			row("N3", servertest.UnitVillA2), row("N4", servertest.UnitVillA2), row("N5", servertest.UnitVillA2),
			row("NB", servertest.UnitVillB1))
		rec := &pathLog{}
		lead := smallPages(t, ct, t.TempDir(), testKey(t), rec)
		signIn(t, lead, "leadA")
		mustSync(t, lead)
		ct.requireHoldsScope(t, lead, "leadA")

		// Offline, the lead escalates, records an attempt and assigns.
		attempt, pending := recordPending(t, lead, ids)
		// Meanwhile the center sends N5 to the other township and a new
		// warning arrives.
		ct.applyAs(t, "center1", ct.op(t, syncproto.OpDispatched, ids["N5"], syncproto.OpBody{Unit: servertest.UnitVillB1}))
		ids2 := ct.importWarnings(t, row("N6", servertest.UnitVillA1))
		// The server is restored: every cursor it made is now foreign.
		if err := ct.srv.Store.NewIncarnation(context.Background()); err != nil {
			t.Fatal(err)
		}

		syncAfterReset(t, ct, lead, rec, ids, attempt, pending)
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
		requireAppliedOnce(t, ct, ids, attempt, pending)
	})

	t.Run("CursorOfAnotherScope", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t,
			row("N1", servertest.UnitVillA1), row("N2", servertest.UnitVillA1),
			row("N3", servertest.UnitVillA2), row("N4", servertest.UnitVillA2),
			row("CB", servertest.UnitVillB1))
		dir, key := t.TempDir(), testKey(t)
		rec := &pathLog{}
		lead := smallPages(t, ct, dir, key, rec)
		signIn(t, lead, "leadA")
		mustSync(t, lead)
		attempt, pending := recordPending(t, lead, ids)
		lead.Close()

		// The folder now holds township B's cursor and one of its
		// warnings: state made for another scope.
		foreign := ct.pullFresh(t, "leadB")
		fw := foreign.warnings[ids["CB"]]
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
			st.Cursor = foreign.cursor
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

		lead = smallPages(t, ct, dir, key, rec)
		if _, ok := lead.Warning(ids["CB"]); !ok {
			t.Fatal("the planted foreign warning is not listed before the sync")
		}
		syncAfterReset(t, ct, lead, rec, ids, attempt, pending)
		if _, ok := lead.Warning(ids["CB"]); ok {
			t.Error("the other scope's warning survived the reset")
		}
	})
}

// syncAfterReset syncs lead, whose cursor the server no longer knows, and
// checks it: a reset, recordPending's ops pushed before the first pull and
// applied once, and lead holding exactly leadA's scope.
func syncAfterReset(t *testing.T, ct *city, lead *clientsdk.Client, rec *pathLog, ids map[string]string, attempt string, pending []string) {
	t.Helper()
	rec.reset()
	rep := mustSync(t, lead)
	if !rep.Reset || rep.Pushed != 3 || rep.Applied != 3 || rep.Rejected != 0 {
		t.Fatalf("report %+v; want a reset with 3 ops pushed and applied", rep)
	}
	rec.requirePushBeforePull(t)
	requireAppliedOnce(t, ct, ids, attempt, pending)
	ct.requireHoldsScope(t, lead, "leadA")
}

// recordPending records, without syncing, an escalation of N1, an attempt
// on N3 and the assignment of N4 to a2x, and returns the attempt's id and
// the three ops' ids.
func recordPending(t *testing.T, lead *clientsdk.Client, ids map[string]string) (string, []string) {
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

// requireAppliedOnce checks on the server that recordPending's ops each
// took effect exactly once: one applied entry each in the log, and the
// states they made.
func requireAppliedOnce(t *testing.T, ct *city, ids map[string]string, attemptID string, pending []string) {
	t.Helper()
	logged := opsInLog(t, ct.srv)
	for _, id := range pending {
		var got []string
		for _, e := range logged[id] {
			got = append(got, e.Result.Status)
		}
		if len(got) != 1 || got[0] != syncproto.StatusApplied {
			t.Errorf("op %s is in the server's log as %v; want applied, once", id, got)
		}
	}
	n1, err := ct.srv.Store.Warning(ids["N1"])
	if err != nil || n1 == nil || !n1.Escalated {
		t.Errorf("N1 on the server: %+v %v; want escalated", n1, err)
	}
	n3, err := ct.srv.Store.Warning(ids["N3"])
	if err != nil || n3 == nil {
		t.Fatalf("N3: %v", err)
	}
	if len(n3.Attempts) != 1 || n3.Attempts[0].ID != attemptID {
		t.Errorf("N3 holds %d attempts, want exactly the one recorded offline", len(n3.Attempts))
	}
	n4, err := ct.srv.Store.Warning(ids["N4"])
	if err != nil || n4 == nil || n4.Assignee != ct.ids["a2x"] || n4.Status != syncproto.WarningAssigned {
		t.Errorf("N4 on the server: %+v %v; want assigned to a2x", n4, err)
	}
}

// TestSDK_ScopeChange: a user moved to another unit ends up holding exactly
// the new scope, and nothing of the old one stays in the file.
func TestSDK_ScopeChange(t *testing.T) {
	t.Run("LeadToAnotherTownship", func(t *testing.T) {
		ct := newCity(t)
		oldIDs := ct.importMany(t, "SA", 40, servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitTownA)
		newIDs := ct.importMany(t, "SB", 4, servertest.UnitVillB1, servertest.UnitTownB)
		dir, key := t.TempDir(), testKey(t)
		lead, old := ct.syncAndSeal(t, dir, key, "leadA", oldIDs...)

		ct.moveUser(t, "leadA", servertest.UnitTownB)
		rep := mustSync(t, lead)
		if !rep.Reset {
			t.Errorf("report %+v; want a reset for the new scope", rep)
		}
		ct.requireHoldsScope(t, lead, "leadA")
		requireListed(t, lead, newIDs...)
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
		requireNotInFile(t, dir, old)
	})

	t.Run("CadreToAnotherVillage", func(t *testing.T) {
		// A village cadre's scope is what is assigned to them, and a move
		// reassigns nothing: the device keeps exactly what the server
		// still assigns to them, and gets new work at the new village.
		ct := newCity(t)
		ids := ct.importWarnings(t, row("V1", servertest.UnitVillA2), row("V2", servertest.UnitVillA2), row("V3", servertest.UnitVillA1))
		ct.applyAs(t, "leadA", ct.op(t, syncproto.OpAssigned, ids["V1"], syncproto.OpBody{Assignee: ct.ids["a2x"]}))
		cadre := ct.loggedIn(t, "a2x")
		requireListed(t, cadre, ids["V1"])
		ct.moveUser(t, "a2x", servertest.UnitVillB1)
		mustSync(t, cadre)
		ct.requireHoldsScope(t, cadre, "a2x")
		v4 := ct.importWarnings(t, row("V4", servertest.UnitVillB1))["V4"]
		ct.applyAs(t, "leadB", ct.op(t, syncproto.OpAssigned, v4, syncproto.OpBody{Assignee: ct.ids["a2x"]}))
		mustSync(t, cadre)
		ct.requireHoldsScope(t, cadre, "a2x")
		requireListed(t, cadre, ids["V1"], v4)
	})

	t.Run("CadreToTownship", func(t *testing.T) {
		// A cadre made a township lead: from "assigned to me" to "all of
		// the township", a new scope.
		ct := newCity(t)
		mine := ct.importMany(t, "T", 40, servertest.UnitVillA2)
		ct.assignAll(t, "a2x", mine...)
		townB := ct.importMany(t, "TB", 2, servertest.UnitVillB1)
		dir, key := t.TempDir(), testKey(t)
		cadre, old := ct.syncAndSeal(t, dir, key, "a2x", mine...)

		ct.moveUser(t, "a2x", servertest.UnitTownB)
		if rep := mustSync(t, cadre); !rep.Reset {
			t.Errorf("report %+v; want a reset for the new scope", rep)
		}
		ct.requireHoldsScope(t, cadre, "a2x")
		requireListed(t, cadre, townB...)
		cadre.Close()
		requireNotInFile(t, dir, old)
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
	ct := newCity(t)
	ids := ct.importMany(t, "M", 40, servertest.UnitVillA2)
	ct.assignAll(t, "a2x", ids...)
	// The first and the middle warning: on two different leaf pages.
	gone := []string{ids[0], ids[20]}

	dir, key := t.TempDir(), testKey(t)
	cadre, sealed := ct.syncAndSeal(t, dir, key, "a2x", ids...)
	requireInFile(t, dir, sealed)

	ct.assignAll(t, "a2y", gone...)
	rep := mustSync(t, cadre)
	if rep.Removed != len(gone) {
		t.Errorf("report %+v; want %d removes", rep, len(gone))
	}
	for _, id := range gone {
		if _, ok := cadre.Warning(id); ok {
			t.Errorf("%s is still listed after its remove", id)
		}
	}
	ct.requireHoldsScope(t, cadre, "a2x")
	cadre.Close()

	removed, kept := map[string][]byte{}, map[string][]byte{}
	for id, v := range sealed {
		if slices.Contains(gone, id) {
			removed[id] = v
		} else {
			kept[id] = v
		}
	}
	requireNotInFile(t, dir, removed)
	requireInFile(t, dir, kept)
	cadre = ct.phone(t, dir, key, nil)
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
		ct := newCity(t)
		ids := ct.importWarnings(t, row("W1", servertest.UnitVillA1), row("W2", servertest.UnitVillA1), row("W3", servertest.UnitVillA1))
		dir, key := t.TempDir(), testKey(t)
		c, sealed := ct.syncAndSeal(t, dir, key, "a1", ids["W1"], ids["W2"], ids["W3"])
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
		// Wiped, the device keeps the two attempts whole for hand-over.
		requireHandedOver := func(c *clientsdk.Client) {
			t.Helper()
			requireWiped(t, c, unsent)
			for i, op := range c.HandOver() {
				if op.Type != syncproto.OpRecorded || op.Body.Outcome != syncproto.OutcomeDissuaded {
					t.Errorf("hand-over[%d] lost its body: %+v", i, op)
				}
			}
		}

		if _, err := ct.srv.Admin(t).RevokeDevice(context.Background(), c.DeviceID(), true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Fatalf("sync after revoke: %v; want ErrRevoked", err)
		}
		requireHandedOver(c)
		for _, ext := range []string{"W1", "W2", "W3"} {
			if n := len(ct.serverWarning(t, ids[ext]).Attempts); n != 0 {
				t.Errorf("%s holds %d attempts on the server; the revoked device's ops must not be applied", ext, n)
			}
		}
		c.Close()
		requireNotInFile(t, dir, sealed)

		c = ct.phone(t, dir, key, nil)
		requireHandedOver(c)
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync after reopening: %v; want ErrRevoked", err)
		}
		if _, err := c.Escalate(ids["W3"], "x"); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("a new op on a revoked device: %v; want ErrRevoked", err)
		}
	})

	t.Run("NoWipe", func(t *testing.T) {
		ct := newCity(t)
		ids := ct.importWarnings(t, row("K1", servertest.UnitVillA1), row("K2", servertest.UnitVillA1))
		dir, key := t.TempDir(), testKey(t)
		c := ct.loggedInAt(t, dir, key, "a1")
		if _, err := c.RecordAttempt(ids["K1"], visit(syncproto.OutcomeRefused)); err != nil {
			t.Fatal(err)
		}
		if _, err := ct.srv.Admin(t).RevokeDevice(context.Background(), c.DeviceID(), false); err != nil {
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
			requireListed(t, c, ids["K1"], ids["K2"])
			if w, _ := c.Warning(ids["K2"]); w.Name != "测试K2" {
				t.Errorf("K2 unreadable: %+v", w.Warning)
			}
			if w, _ := c.Warning(ids["K1"]); len(w.Ops) != 1 || w.Status != syncproto.WarningInProgress {
				t.Errorf("K1 lost its pending attempt: %s %+v", w.Status, w.Ops)
			}
		}
		requireKept(c)
		c.Close()
		c = ct.phone(t, dir, key, nil)
		requireKept(c)
		if _, err := c.Sync(context.Background()); !errors.Is(err, clientsdk.ErrRevoked) {
			t.Errorf("sync after reopening: %v; want ErrRevoked", err)
		}
	})
}

// syncAndSeal signs username in on a phone in dir, sealed with key, syncs
// it and checks it lists ids. It returns the phone, opened again, and the
// sealed records of the warnings in its file, read while it was closed:
// one for each of ids.
func (ct *city) syncAndSeal(t *testing.T, dir string, key []byte, username string, ids ...string) (*clientsdk.Client, map[string][]byte) {
	t.Helper()
	c := ct.loggedInAt(t, dir, key, username)
	requireListed(t, c, ids...)
	c.Close()
	sealed := sealedWarnings(t, dir)
	if len(sealed) != len(ids) {
		t.Fatalf("captured %d sealed warnings, want %d", len(sealed), len(ids))
	}
	return ct.phone(t, dir, key, nil), sealed
}

// smallPages opens an SDK that pulls 2 changes a page, so a reset spans
// several pages, with its requests recorded.
func smallPages(t *testing.T, ct *city, dir string, key []byte, rec *pathLog) *clientsdk.Client {
	t.Helper()
	opts := ct.phoneOptions(key, rec)
	opts.PullLimit = 2
	return openPhone(t, dir, opts)
}

// pathLog records the path of every request it carries.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.paths = append(l.paths, r.URL.Path)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (l *pathLog) reset() {
	l.mu.Lock()
	l.paths = nil
	l.mu.Unlock()
}

// requirePushBeforePull checks that the requests since reset pushed, and
// pushed everything before the first pull.
func (l *pathLog) requirePushBeforePull(t *testing.T) {
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

// assignAll assigns warnings to a village user of township A as leadA, in
// one push.
func (ct *city) assignAll(t *testing.T, username string, ids ...string) {
	t.Helper()
	ops := make([]syncproto.Op, len(ids))
	for i, id := range ids {
		ops[i] = ct.op(t, syncproto.OpAssigned, id, syncproto.OpBody{Assignee: ct.ids[username]})
	}
	ct.applyAs(t, "leadA", ops...)
}
