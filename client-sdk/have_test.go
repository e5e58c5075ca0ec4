package clientsdk_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSync_KeepsWhatItPushed: after a push the phone computes the state
// the server made of its ops, and the pull that follows leaves that state
// out (kept); the phone then holds the server's state to the byte, and
// still does after it restarts.
func TestSync_KeepsWhatItPushed(t *testing.T) {
	t.Run("Cadre", func(t *testing.T) {
		ct := newCity(t)
		id := ct.importWarnings(t, row("K1", servertest.UnitVillA1))["K1"]
		dir, key := t.TempDir(), testKey(t)
		phone := ct.loggedInAt(t, dir, key, "a1")
		// An attempt with a photo the server has not yet got, and an
		// escalation, which the server signs with the cadre's name.
		a := visit(syncproto.OutcomeRefused)
		a.Photos = []string{writePhoto(t, 2000, 3)}
		if _, err := phone.RecordAttempt(id, a); err != nil {
			t.Fatal(err)
		}
		if _, err := phone.Escalate(id, "家属不配合"); err != nil {
			t.Fatal(err)
		}
		rep := mustSync(t, phone)
		if rep.Applied != 2 || rep.Kept != 1 || rep.Pulled != 0 || rep.Photos != 1 {
			t.Fatalf("report %+v, want 2 applied, 1 kept, nothing pulled, 1 photo", rep)
		}
		ct.requireServerState(t, phone, "a1", id)
		if err := phone.Close(); err != nil {
			t.Fatal(err)
		}
		ct.requireServerState(t, ct.phone(t, dir, key, nil), "a1", id)
	})
	t.Run("Lead", func(t *testing.T) {
		// A lead's ops look the directory up: the assignee, and the
		// lead's own name beside the escalation.
		ct := newCity(t)
		id := ct.importWarnings(t, row("K2", servertest.UnitVillA2))["K2"]
		lead := ct.loggedIn(t, "leadA")
		if _, err := lead.Assign(id, ct.ids["a2x"]); err != nil {
			t.Fatal(err)
		}
		if _, err := lead.Escalate(id, "需要派出所协助"); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var changed []string
		stop := lead.OnChange(func(ev clientsdk.Event) {
			if ev.Kind == clientsdk.EventWarnings {
				mu.Lock()
				changed = append(changed, ev.IDs...)
				mu.Unlock()
			}
		})
		rep := mustSync(t, lead)
		stop()
		if rep.Applied != 2 || rep.Kept != 1 || rep.Pulled != 0 {
			t.Fatalf("report %+v, want 2 applied, 1 kept, nothing pulled", rep)
		}
		// The kept state replaced the pending ops' view: a screen showing
		// the warning hears of it.
		mu.Lock()
		if !slices.Contains(changed, id) {
			t.Errorf("the sync that kept warning %s announced changes of %v only", id, changed)
		}
		mu.Unlock()
		ct.requireServerState(t, lead, "leadA", id)
	})
	t.Run("ChangedMeanwhile", func(t *testing.T) {
		// A lead's op before the cadre's push: the state the phone
		// computed is not the server's, and the pull sends the server's.
		ct := newCity(t)
		id := ct.importWarnings(t, row("K3", servertest.UnitVillA1))["K3"]
		phone := ct.loggedIn(t, "a1")
		if _, err := phone.RecordAttempt(id, visit(syncproto.OutcomeDissuaded)); err != nil {
			t.Fatal(err)
		}
		ct.applyAs(t, "leadA", ct.op(t, syncproto.OpEscalated, id, syncproto.OpBody{Reason: "重点关注"}))
		rep := mustSync(t, phone)
		if rep.Applied != 1 || rep.Kept != 0 || rep.Pulled != 1 {
			t.Fatalf("report %+v, want 1 applied, none kept, 1 pulled", rep)
		}
		ct.requireServerState(t, phone, "a1", id)
	})
}

// requireServerState fails t unless c holds warning id, with nothing
// pending on it, exactly as the server gives it to username (GET
// /v1/warnings/{id}), compared by MessagePack encoding.
func (ct *city) requireServerState(t *testing.T, c *clientsdk.Client, username, id string) {
	t.Helper()
	got, ok := c.Warning(id)
	if !ok || len(got.Ops) != 0 {
		t.Fatalf("the phone holds %s: %v, with %d ops pending", id, ok, len(got.Ops))
	}
	d := ct.srv.Login(t, username, servertest.CityPassword)
	var detail struct {
		Warning *syncproto.Warning `json:"warning"`
	}
	if err := d.Do(context.Background(), http.MethodGet, "/v1/warnings/"+id, nil, &detail); err != nil {
		t.Fatal(err)
	}
	mine, err := syncproto.Msgpack.Marshal(&got.Warning)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := syncproto.Msgpack.Marshal(detail.Warning)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, theirs) {
		t.Fatalf("the phone's state of %s is not the server's:\nphone  %+v\nserver %+v", id, got.Warning, *detail.Warning)
	}
}

// TestExpectedState_CannotTell: the phone computes no state where it
// cannot know the server's, and the pull sends it.
func TestExpectedState_CannotTell(t *testing.T) {
	base := &syncproto.Warning{ID: "0190a3b2-0000-7000-8000-000000000001", Unit: servertest.UnitVillA1, Status: syncproto.WarningAssigned,
		Assignee: "0190a3b2-0000-7000-8000-000000000101", Attempts: []syncproto.Attempt{}, Reviews: []syncproto.Review{}, Flags: []syncproto.Flag{}, Version: 7}
	reached := true
	op := syncproto.Op{ID: "0190a3b2-0000-7000-8000-000000000201", ClientSeq: 1, Type: syncproto.OpRecorded, WarningID: base.ID, BaseVersion: 7,
		At: time.Now().UTC(), Body: syncproto.OpBody{AttemptID: "0190a3b2-0000-7000-8000-000000000301", Method: syncproto.MethodVisit, Reached: &reached, Outcome: syncproto.OutcomeRefused}}
	e := clientsdk.Expect{Actor: syncproto.Actor{UserID: base.Assignee, Role: syncproto.RoleVillage, Unit: base.Unit, DeviceID: "d"}}
	applied := func(o syncproto.Op, version uint64) []clientsdk.AppliedOp {
		return []clientsdk.AppliedOp{{Op: &o, Version: version, ReceivedAt: time.Now().UTC()}}
	}
	if w, ok := clientsdk.ExpectedState(base, applied(op, 9), e); !ok || w.Version != 9 || len(w.Attempts) != 1 || base.Version != 7 || len(base.Attempts) != 0 {
		t.Fatalf("the plain case: %v %+v (base %+v)", ok, w, base)
	}
	older := op
	older.BaseVersion = 6
	summary := *base
	summary.Summary = true
	for name, tc := range map[string]struct {
		base *syncproto.Warning
		ops  []clientsdk.AppliedOp
	}{
		"NoBase":          {nil, applied(op, 9)},
		"Summary":         {&summary, applied(op, 9)},
		"MadeOnAnother":   {base, applied(older, 9)},
		"NoAnswer":        {base, applied(op, 0)},
		"NoReceivedAt":    {base, []clientsdk.AppliedOp{{Op: &op, Version: 9}}},
		"NoOps":           {base, nil},
		"RejectedOnPhone": {base, applied(syncproto.Op{ID: op.ID, Type: syncproto.OpReviewed, WarningID: base.ID, BaseVersion: 7, At: op.At, Body: syncproto.OpBody{Decision: syncproto.DecisionApprove}}, 9)},
	} {
		if _, ok := clientsdk.ExpectedState(tc.base, tc.ops, e); ok {
			t.Errorf("%s: a state where the phone cannot tell", name)
		}
	}
}
