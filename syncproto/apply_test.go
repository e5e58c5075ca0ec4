package syncproto_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/syncproto"
)

// mustApply applies op and fails t if it is rejected.
func mustApply(tb testing.TB, w *syncproto.Warning, op *syncproto.Op, env syncproto.Env) syncproto.Applied {
	tb.Helper()
	res, err := syncproto.Apply(w, op, env)
	if err != nil {
		tb.Fatalf("Apply(%s) rejected: %v", op.Type, err)
	}
	if res.Warning == nil {
		tb.Fatalf("Apply(%s) returned no state", op.Type)
	}
	return res
}

// mustReject applies op and fails t unless it is rejected with code.
func mustReject(tb testing.TB, w *syncproto.Warning, op *syncproto.Op, env syncproto.Env, code string) *syncproto.Error {
	tb.Helper()
	res, err := syncproto.Apply(w, op, env)
	e := requireCode(tb, err, code)
	if res.Warning != nil || res.Changed {
		tb.Fatalf("a rejected op returned a state (changed=%v)", res.Changed)
	}
	return e
}

// requireFlags fails t unless the op raised exactly codes, in order, each
// open and naming the op, and the new state carries them last.
func requireFlags(tb testing.TB, res syncproto.Applied, op *syncproto.Op, codes ...string) {
	tb.Helper()
	var got []string
	for _, f := range res.Flags {
		got = append(got, f.Code)
		if f.OpID != op.ID || f.Resolved || f.Detail == "" {
			tb.Fatalf("flag %+v: want op_id %s, resolved false and a detail", f, op.ID)
		}
	}
	if !slices.Equal(got, codes) {
		tb.Fatalf("flags = %v, want %v", got, codes)
	}
	if n := len(res.Flags); n > 0 {
		tail := res.Warning.Flags[len(res.Warning.Flags)-n:]
		assertEqual(tb, res.Flags, tail)
	}
}

func requireStatus(tb testing.TB, w *syncproto.Warning, status string) {
	tb.Helper()
	if w.Status != status {
		tb.Fatalf("status = %s, want %s", w.Status, status)
	}
}

func requireTime(tb testing.TB, name string, got *time.Time, want time.Time) {
	tb.Helper()
	if got == nil {
		tb.Fatalf("%s is nil, want %s", name, want)
	}
	if !got.Equal(want) {
		tb.Fatalf("%s = %s, want %s", name, got, want)
	}
}

var (
	allStatuses = []string{
		syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
		syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed,
	}
	conclusive   = []string{syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget}
	inconclusive = []string{syncproto.OutcomeUnreachable, syncproto.OutcomeRefused}
)

// statusWarning is a warning in status at villageTwo, assigned to cadreTwoA
// unless the status comes before assignment.
func statusWarning(status string) *syncproto.Warning {
	switch status {
	case syncproto.WarningNew:
		return newWarning(status, townUnit, "")
	case syncproto.WarningDispatched:
		return newWarning(status, villageTwo, "")
	}
	return newWarning(status, villageTwo, cadreTwoA)
}

func TestApply_Dispatch(t *testing.T) {
	t.Run("ToVillageWithTwoCadres", func(t *testing.T) {
		w := newWarning(syncproto.WarningNew, cityUnit, "")
		res := mustApply(t, w, dispatchOp(villageTwo), testEnv(centerActor))
		n := res.Warning
		requireStatus(t, n, syncproto.WarningDispatched)
		if n.Unit != villageTwo || n.Assignee != "" || n.AssignedAt != nil {
			t.Fatalf("unit %s assignee %q assigned_at %v: want %s, no assignee", n.Unit, n.Assignee, n.AssignedAt, villageTwo)
		}
		requireTime(t, "dispatched_at", n.DispatchedAt, now)
		if !res.Changed || !res.Moved || len(res.Flags) != 0 || n.Version != 42 {
			t.Fatalf("changed %v moved %v flags %v version %d", res.Changed, res.Moved, res.Flags, n.Version)
		}
	})

	t.Run("ClearsAssignee", func(t *testing.T) {
		w := newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA)
		res := mustApply(t, w, dispatchOp(townUnit), testEnv(townActor))
		n := res.Warning
		requireStatus(t, n, syncproto.WarningDispatched)
		if n.Unit != townUnit || n.Assignee != "" {
			t.Fatalf("unit %s assignee %q, want %s and none", n.Unit, n.Assignee, townUnit)
		}
		if !slices.Equal(n.PastAssignees, []string{cadreTwoA}) {
			t.Fatalf("past assignees %v, want [%s]", n.PastAssignees, cadreTwoA)
		}
		if !res.Moved {
			t.Fatal("clearing the assignee must move the warning out of the cadre's scope")
		}
	})

	t.Run("AutoAssignsSoleActiveCadre", func(t *testing.T) {
		w := newWarning(syncproto.WarningNew, countyUnit, "")
		res := mustApply(t, w, dispatchOp(villageOne), testEnv(countyActor))
		n := res.Warning
		requireStatus(t, n, syncproto.WarningAssigned)
		if n.Unit != villageOne || n.Assignee != cadreOne {
			t.Fatalf("unit %s assignee %s, want %s %s", n.Unit, n.Assignee, villageOne, cadreOne)
		}
		requireTime(t, "assigned_at", n.AssignedAt, now)
		requireTime(t, "dispatched_at", n.DispatchedAt, now)
		if !res.Moved {
			t.Fatal("moved = false")
		}
	})

	for _, tc := range []struct{ name, unit string }{
		{"NoAutoAssignWithTwoCadres", villageTwo},
		{"NoAutoAssignWithoutActiveCadre", villageNone},
		{"NoAutoAssignAboveVillage", townUnit}, // townUnit has one active (township) user
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWarning(syncproto.WarningNew, cityUnit, "")
			n := mustApply(t, w, dispatchOp(tc.unit), testEnv(centerActor)).Warning
			requireStatus(t, n, syncproto.WarningDispatched)
			if n.Assignee != "" || n.AssignedAt != nil {
				t.Fatalf("assigned to %s, want nobody", n.Assignee)
			}
		})
	}

	t.Run("AutoAssignInPlaceIsAMove", func(t *testing.T) {
		// The village had no cadre when the warning arrived; now it has one.
		w := newWarning(syncproto.WarningDispatched, villageOne, "")
		res := mustApply(t, w, dispatchOp(villageOne), testEnv(townActor))
		if res.Warning.Assignee != cadreOne {
			t.Fatalf("assignee %q, want %s", res.Warning.Assignee, cadreOne)
		}
		if !res.Moved {
			t.Fatal("moved = false, but the warning entered the cadre's scope")
		}
	})

	t.Run("RedispatchInPlaceIsNoMove", func(t *testing.T) {
		w := newWarning(syncproto.WarningDispatched, villageTwo, "")
		res := mustApply(t, w, dispatchOp(villageTwo), testEnv(townActor))
		if !res.Changed || res.Moved {
			t.Fatalf("changed %v moved %v, want changed and not moved", res.Changed, res.Moved)
		}
	})

	for _, status := range []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned, syncproto.WarningInProgress} {
		t.Run("From_"+status, func(t *testing.T) {
			n := mustApply(t, statusWarning(status), dispatchOp(townUnit), testEnv(countyActor)).Warning
			requireStatus(t, n, syncproto.WarningDispatched)
		})
	}

	for _, status := range []string{syncproto.WarningResolved, syncproto.WarningClosed} {
		t.Run("From_"+status+"_InvalidState", func(t *testing.T) {
			mustReject(t, statusWarning(status), dispatchOp(townUnit), testEnv(countyActor), syncproto.CodeInvalidState)
		})
	}

	for _, tc := range []struct {
		name  string
		w     *syncproto.Warning
		unit  string
		actor syncproto.Actor
		code  string
		field string
	}{
		{"VillageForbidden", newWarning(syncproto.WarningAssigned, villageOne, cadreOne), villageOne, cadre(cadreOne), syncproto.CodeForbidden, ""},
		{"WarningOutOfScope", newWarning(syncproto.WarningDispatched, villageTwo, ""), otherVillage, otherTownActor, syncproto.CodeForbidden, ""},
		{"TargetOutOfScope", newWarning(syncproto.WarningDispatched, townUnit, ""), otherVillage, townActor, syncproto.CodeForbidden, ""},
		{"TargetAboveActor", newWarning(syncproto.WarningDispatched, townUnit, ""), countyUnit, townActor, syncproto.CodeForbidden, ""},
		{"TargetInOtherCounty", newWarning(syncproto.WarningNew, countyUnit, ""), farVillage, countyActor, syncproto.CodeForbidden, ""},
		{"UnknownUnit", newWarning(syncproto.WarningNew, countyUnit, ""), missingUnit, countyActor, syncproto.CodeInvalidRequest, "body.unit"},
		{"MalformedUnit", newWarning(syncproto.WarningNew, countyUnit, ""), "41100200100", countyActor, syncproto.CodeInvalidRequest, "body.unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustReject(t, tc.w, dispatchOp(tc.unit), testEnv(tc.actor), tc.code)
			if tc.field != "" {
				requireField(t, e, tc.field)
			}
		})
	}
}

func TestApply_Assign(t *testing.T) {
	t.Run("AssigneeAndUnitFollow", func(t *testing.T) {
		w := newWarning(syncproto.WarningDispatched, townUnit, "")
		res := mustApply(t, w, assignOp(cadreTwoA), testEnv(townActor))
		n := res.Warning
		requireStatus(t, n, syncproto.WarningAssigned)
		if n.Assignee != cadreTwoA || n.Unit != villageTwo {
			t.Fatalf("assignee %s unit %s, want %s at %s", n.Assignee, n.Unit, cadreTwoA, villageTwo)
		}
		requireTime(t, "assigned_at", n.AssignedAt, now)
		if !res.Changed || !res.Moved || n.Version != 42 {
			t.Fatalf("changed %v moved %v version %d", res.Changed, res.Moved, n.Version)
		}
	})

	t.Run("ReassignAcrossVillages", func(t *testing.T) {
		w := newWarning(syncproto.WarningInProgress, villageOne, cadreOne)
		n := mustApply(t, w, assignOp(cadreTwoB), testEnv(townActor)).Warning
		requireStatus(t, n, syncproto.WarningAssigned)
		if n.Unit != villageTwo || n.Assignee != cadreTwoB {
			t.Fatalf("unit %s assignee %s", n.Unit, n.Assignee)
		}
		if !slices.Equal(n.PastAssignees, []string{cadreOne}) {
			t.Fatalf("past assignees %v, want [%s]", n.PastAssignees, cadreOne)
		}
	})

	t.Run("PastAssigneesKept", func(t *testing.T) {
		w := newWarning(syncproto.WarningAssigned, villageOne, cadreOne)
		for _, u := range []string{cadreTwoA, cadreTwoB, cadreOne, cadreTwoA} {
			w = mustApply(t, w, assignOp(u), testEnv(countyActor)).Warning
		}
		if w.Assignee != cadreTwoA {
			t.Fatalf("assignee %s", w.Assignee)
		}
		// Each former assignee once, in the order they left.
		if want := []string{cadreOne, cadreTwoA, cadreTwoB}; !slices.Equal(w.PastAssignees, want) {
			t.Fatalf("past assignees %v, want %v", w.PastAssignees, want)
		}
	})

	t.Run("SameAssigneeIsNoMove", func(t *testing.T) {
		w := newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA)
		res := mustApply(t, w, assignOp(cadreTwoA), testEnv(townActor))
		if res.Moved || len(res.Warning.PastAssignees) != 0 {
			t.Fatalf("moved %v past %v", res.Moved, res.Warning.PastAssignees)
		}
	})

	for _, tc := range []struct {
		name     string
		w        *syncproto.Warning
		assignee string
		actor    syncproto.Actor
		code     string
		field    string
	}{
		{"InactiveAssignee", newWarning(syncproto.WarningDispatched, villageNone, ""), cadreDisabled, townActor, syncproto.CodeInvalidRequest, "body.assignee"},
		{"NotAVillageUser", newWarning(syncproto.WarningDispatched, townUnit, ""), townshipUser, townActor, syncproto.CodeInvalidRequest, "body.assignee"},
		{"UnknownUser", newWarning(syncproto.WarningDispatched, townUnit, ""), id(999), townActor, syncproto.CodeInvalidRequest, "body.assignee"},
		{"MalformedUser", newWarning(syncproto.WarningDispatched, townUnit, ""), "cadre1", townActor, syncproto.CodeInvalidRequest, "body.assignee"},
		{"AssigneeOutOfScope", newWarning(syncproto.WarningDispatched, townUnit, ""), cadreOther, townActor, syncproto.CodeForbidden, ""},
		{"WarningOutOfScope", newWarning(syncproto.WarningDispatched, townUnit, ""), cadreOther, otherTownActor, syncproto.CodeForbidden, ""},
		{"VillageForbidden", newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), cadreTwoB, cadre(cadreTwoA), syncproto.CodeForbidden, ""},
		{"FromResolved", newWarning(syncproto.WarningResolved, villageTwo, cadreTwoA), cadreTwoB, townActor, syncproto.CodeInvalidState, ""},
		{"FromClosed", newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA), cadreTwoB, townActor, syncproto.CodeInvalidState, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustReject(t, tc.w, assignOp(tc.assignee), testEnv(tc.actor), tc.code)
			if tc.field != "" {
				requireField(t, e, tc.field)
			}
		})
	}
}

func TestApply_Record(t *testing.T) {
	assigned := func() *syncproto.Warning { return newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA) }
	byAssignee := testEnv(cadre(cadreTwoA))

	for _, outcome := range conclusive {
		t.Run("Conclusive_"+outcome, func(t *testing.T) {
			op := recordOp(id(501), outcome, true)
			res := mustApply(t, assigned(), op, byAssignee)
			n := res.Warning
			requireStatus(t, n, syncproto.WarningResolved)
			requireTime(t, "resolved_at", n.ResolvedAt, now)
			if n.Outcome != outcome {
				t.Fatalf("outcome %s, want %s", n.Outcome, outcome)
			}
			requireFlags(t, res, op)
		})
	}

	for _, outcome := range inconclusive {
		t.Run("Inconclusive_"+outcome, func(t *testing.T) {
			n := mustApply(t, assigned(), recordOp(id(501), outcome, false), byAssignee).Warning
			requireStatus(t, n, syncproto.WarningInProgress)
			if n.Outcome != outcome || n.ResolvedAt != nil {
				t.Fatalf("outcome %s resolved_at %v", n.Outcome, n.ResolvedAt)
			}
		})
	}

	t.Run("AttemptFields", func(t *testing.T) {
		op := recordOp(id(501), syncproto.OutcomeAlreadyDefrauded, true)
		op.Body.Method = syncproto.MethodVisit
		op.Body.LossFen = 1500000
		op.Body.Location = &syncproto.Location{Lat: 34.03, Lng: 113.85, Accuracy: 8}
		op.Body.Photos = []string{strings.Repeat("0f", 32)}
		op.At = now.Add(-20 * time.Minute).In(syncproto.Beijing)
		env := byAssignee
		n := mustApply(t, assigned(), op, env).Warning
		if len(n.Attempts) != 1 {
			t.Fatalf("%d attempts, want 1", len(n.Attempts))
		}
		want := syncproto.Attempt{
			ID: id(501), By: cadreTwoA, DeviceID: env.Actor.DeviceID, Method: syncproto.MethodVisit,
			Reached: true, Outcome: syncproto.OutcomeAlreadyDefrauded, LossFen: 1500000, Notes: op.Body.Notes,
			At: op.At, ReceivedAt: now, Location: &syncproto.Location{Lat: 34.03, Lng: 113.85, Accuracy: 8},
			Photos: []string{strings.Repeat("0f", 32)}, Version: 42,
		}
		got := n.Attempts[0]
		assertEqual(t, want, got)
		if got.At.Location() != time.UTC || got.ReceivedAt.Location() != time.UTC {
			t.Fatalf("attempt times in %s and %s, want UTC", got.At.Location(), got.ReceivedAt.Location())
		}
	})

	t.Run("InconclusiveNeverUndoesResolution", func(t *testing.T) {
		for _, status := range []string{syncproto.WarningResolved, syncproto.WarningClosed} {
			for _, outcome := range inconclusive {
				w := newWarning(status, villageTwo, cadreTwoA)
				w.Outcome = syncproto.OutcomeDissuaded
				w.ResolvedAt = timePtr(warnedAt.Add(30 * time.Minute))
				n := mustApply(t, w, recordOp(id(501), outcome, false), byAssignee).Warning
				requireStatus(t, n, status)
				if n.Outcome != syncproto.OutcomeDissuaded {
					t.Fatalf("%s then %s: outcome %s, want dissuaded", status, outcome, n.Outcome)
				}
				requireTime(t, "resolved_at", n.ResolvedAt, warnedAt.Add(30*time.Minute))
				if len(n.Attempts) != 1 {
					t.Fatal("the attempt must be kept")
				}
			}
		}
	})

	t.Run("OutcomeIsLatestConclusiveElseLatest", func(t *testing.T) {
		w := assigned()
		for i, step := range []struct{ outcome, want, status string }{
			{syncproto.OutcomeUnreachable, syncproto.OutcomeUnreachable, syncproto.WarningInProgress},
			{syncproto.OutcomeRefused, syncproto.OutcomeRefused, syncproto.WarningInProgress},
			{syncproto.OutcomeNotTarget, syncproto.OutcomeNotTarget, syncproto.WarningResolved},
			{syncproto.OutcomeUnreachable, syncproto.OutcomeNotTarget, syncproto.WarningResolved},
			{syncproto.OutcomeDissuaded, syncproto.OutcomeDissuaded, syncproto.WarningResolved},
			{syncproto.OutcomeRefused, syncproto.OutcomeDissuaded, syncproto.WarningResolved},
		} {
			w = mustApply(t, w, recordOp(id(600+i), step.outcome, true), byAssignee).Warning
			if w.Outcome != step.want || w.Status != step.status {
				t.Fatalf("after %d (%s): outcome %s status %s, want %s %s", i, step.outcome, w.Outcome, w.Status, step.want, step.status)
			}
		}
		if len(w.Attempts) != 6 {
			t.Fatalf("%d attempts, want 6", len(w.Attempts))
		}
	})

	t.Run("LossOnlyWhenDefrauded", func(t *testing.T) {
		for _, outcome := range []string{syncproto.OutcomeDissuaded, syncproto.OutcomeNotTarget, syncproto.OutcomeUnreachable, syncproto.OutcomeRefused} {
			op := recordOp(id(501), outcome, true)
			op.Body.LossFen = 100
			requireField(t, mustReject(t, assigned(), op, byAssignee, syncproto.CodeInvalidRequest), "body.loss_fen")
		}
		op := recordOp(id(501), syncproto.OutcomeAlreadyDefrauded, true)
		op.Body.LossFen = 100
		if n := mustApply(t, assigned(), op, byAssignee).Warning; n.Attempts[0].LossFen != 100 {
			t.Fatalf("loss_fen %d, want 100", n.Attempts[0].LossFen)
		}
	})

	t.Run("DuplicateAttemptIsNoOp", func(t *testing.T) {
		w := mustApply(t, assigned(), recordOp(id(501), syncproto.OutcomeRefused, true), byAssignee).Warning
		// The same attempt again, in another op (a retry after a lost answer
		// that the outbox re-queued), from a future clock.
		again := recordOp(id(501), syncproto.OutcomeDissuaded, true)
		again.At = now.Add(time.Hour)
		res, err := syncproto.Apply(w, again, testEnv(cadre(cadreTwoA)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || res.Moved || len(res.Flags) != 0 || res.Warning != w {
			t.Fatalf("changed %v moved %v flags %v same state %v: want an unchanged no-op", res.Changed, res.Moved, res.Flags, res.Warning == w)
		}
		if len(w.Attempts) != 1 || w.Outcome != syncproto.OutcomeRefused || w.Version != 42 {
			t.Fatalf("attempts %d outcome %s version %d", len(w.Attempts), w.Outcome, w.Version)
		}
	})

	t.Run("CurrentAssigneeNoFlag", func(t *testing.T) {
		op := recordOp(id(501), syncproto.OutcomeRefused, true)
		requireFlags(t, mustApply(t, assigned(), op, byAssignee), op)
	})

	t.Run("FormerAssigneeStale", func(t *testing.T) {
		// cadreOne had it at villageOne; it went to villageTwo since.
		w := mustApply(t, newWarning(syncproto.WarningAssigned, villageOne, cadreOne), assignOp(cadreTwoA), testEnv(townActor)).Warning
		op := recordOp(id(501), syncproto.OutcomeDissuaded, true)
		res := mustApply(t, w, op, testEnv(cadre(cadreOne)))
		requireFlags(t, res, op, syncproto.FlagStaleAssignee)
		if a := res.Warning.Attempts[0]; a.By != cadreOne {
			t.Fatalf("attempt by %s", a.By)
		}
		requireStatus(t, res.Warning, syncproto.WarningResolved)
	})

	t.Run("OtherCadreOfUnitStale", func(t *testing.T) {
		op := recordOp(id(501), syncproto.OutcomeRefused, true)
		res := mustApply(t, assigned(), op, testEnv(cadre(cadreTwoB)))
		requireFlags(t, res, op, syncproto.FlagStaleAssignee)
	})

	t.Run("CadreOfUnassignedWarningStale", func(t *testing.T) {
		op := recordOp(id(501), syncproto.OutcomeRefused, true)
		res := mustApply(t, newWarning(syncproto.WarningDispatched, villageTwo, ""), op, testEnv(cadre(cadreTwoB)))
		requireFlags(t, res, op, syncproto.FlagStaleAssignee)
	})

	for _, tc := range []struct {
		name  string
		actor syncproto.Actor
	}{
		{"StrangerCadreForbidden", cadre(cadreOther)},
		{"NeighbourVillageForbidden", cadre(cadreOne)},
		{"OtherTownshipForbidden", otherTownActor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustReject(t, assigned(), recordOp(id(501), syncproto.OutcomeDissuaded, true), testEnv(tc.actor), syncproto.CodeForbidden)
		})
	}

	t.Run("ManagerNoFlag", func(t *testing.T) {
		for _, a := range []syncproto.Actor{townActor, countyActor, centerActor} {
			op := recordOp(id(501), syncproto.OutcomeDissuaded, true)
			res := mustApply(t, assigned(), op, testEnv(a))
			requireFlags(t, res, op)
			requireStatus(t, res.Warning, syncproto.WarningResolved)
		}
	})

	t.Run("AfterClose", func(t *testing.T) {
		w := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
		w.Outcome = syncproto.OutcomeDissuaded
		op := recordOp(id(501), syncproto.OutcomeDissuaded, true)
		res := mustApply(t, w, op, byAssignee)
		requireFlags(t, res, op, syncproto.FlagAfterClose)
		requireStatus(t, res.Warning, syncproto.WarningClosed)
		if len(res.Warning.Attempts) != 1 {
			t.Fatal("a late attempt must be kept")
		}
	})

	for _, tc := range []struct {
		prev, next string
		conflict   bool
	}{
		{syncproto.OutcomeDissuaded, syncproto.OutcomeNotTarget, true},
		{syncproto.OutcomeNotTarget, syncproto.OutcomeAlreadyDefrauded, true},
		{syncproto.OutcomeDissuaded, syncproto.OutcomeDissuaded, false},
		{syncproto.OutcomeUnreachable, syncproto.OutcomeDissuaded, false},
		{syncproto.OutcomeDissuaded, syncproto.OutcomeRefused, false},
	} {
		t.Run("ConflictingOutcomes_"+tc.prev+"_"+tc.next, func(t *testing.T) {
			w := mustApply(t, assigned(), recordOp(id(501), tc.prev, true), byAssignee).Warning
			op := recordOp(id(502), tc.next, true)
			res := mustApply(t, w, op, byAssignee)
			if tc.conflict {
				requireFlags(t, res, op, syncproto.FlagConflictingOutcomes)
				if res.Warning.Outcome != tc.next {
					t.Fatalf("outcome %s, want the latest conclusive %s", res.Warning.Outcome, tc.next)
				}
			} else {
				requireFlags(t, res, op)
			}
		})
	}

	t.Run("SeveralFlagsAtOnce", func(t *testing.T) {
		w := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
		w.Outcome = syncproto.OutcomeDissuaded
		op := recordOp(id(501), syncproto.OutcomeNotTarget, true)
		op.At = now.Add(time.Hour)
		res := mustApply(t, w, op, testEnv(cadre(cadreTwoB)))
		requireFlags(t, res, op, syncproto.FlagFutureTime, syncproto.FlagStaleAssignee, syncproto.FlagAfterClose, syncproto.FlagConflictingOutcomes)
	})

	for _, tc := range []struct {
		name   string
		at     time.Time
		future bool
	}{
		{"FutureTime", now.Add(syncproto.FutureSkew + time.Second), true},
		{"WithinSkew", now.Add(syncproto.FutureSkew), false},
		{"Past", now.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := recordOp(id(501), syncproto.OutcomeRefused, true)
			op.At = tc.at
			res := mustApply(t, assigned(), op, byAssignee)
			if tc.future {
				requireFlags(t, res, op, syncproto.FlagFutureTime)
			} else {
				requireFlags(t, res, op)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		at      time.Time
		reached bool
		want    *time.Time // nil: no first contact
	}{
		{"FirstContactAtDeviceTime", warnedAt.Add(30 * time.Minute), true, timePtr(warnedAt.Add(30 * time.Minute))},
		{"FirstContactNotBeforeWarning", warnedAt.Add(-48 * time.Hour), true, timePtr(warnedAt)},
		{"FirstContactNotAfterServer", now.Add(3 * time.Minute), true, timePtr(now)},
		{"FirstContactNotAfterServerFarFuture", now.Add(24 * time.Hour), true, timePtr(now)},
		{"NoContactWhenNotReached", warnedAt.Add(30 * time.Minute), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := recordOp(id(501), syncproto.OutcomeUnreachable, tc.reached)
			op.At = tc.at
			n := mustApply(t, assigned(), op, byAssignee).Warning
			if tc.want == nil {
				if n.FirstContactAt != nil {
					t.Fatalf("first_contact_at %s, want none", n.FirstContactAt)
				}
				return
			}
			requireTime(t, "first_contact_at", n.FirstContactAt, *tc.want)
		})
	}

	t.Run("FirstContactIsEarliest", func(t *testing.T) {
		w := assigned()
		for i, step := range []struct {
			at   time.Duration // after warnedAt
			want time.Duration
		}{{30 * time.Minute, 30 * time.Minute}, {20 * time.Minute, 20 * time.Minute}, {40 * time.Minute, 20 * time.Minute}} {
			op := recordOp(id(700+i), syncproto.OutcomeRefused, true)
			op.At = warnedAt.Add(step.at)
			w = mustApply(t, w, op, byAssignee).Warning
			requireTime(t, "first_contact_at", w.FirstContactAt, warnedAt.Add(step.want))
		}
	})
}

func TestApply_Escalate(t *testing.T) {
	w := func() *syncproto.Warning { return newWarning(syncproto.WarningInProgress, villageTwo, cadreTwoA) }

	for _, a := range []syncproto.Actor{cadre(cadreTwoA), cadre(cadreTwoB), townActor, countyActor, centerActor} {
		t.Run("InScope_"+a.Role+"_"+a.UserID[len(a.UserID)-3:], func(t *testing.T) {
			res := mustApply(t, w(), escalateOp("对方情绪激动，需民警上门"), testEnv(a))
			if !res.Warning.Escalated || !res.Changed || res.Warning.Version != 42 {
				t.Fatalf("escalated %v changed %v version %d", res.Warning.Escalated, res.Changed, res.Warning.Version)
			}
			requireStatus(t, res.Warning, syncproto.WarningInProgress)
		})
	}

	t.Run("KeepsWhoWhenWhy", func(t *testing.T) {
		op := escalateOp("对方情绪激动，需民警上门")
		res := mustApply(t, w(), op, testEnv(cadre(cadreTwoA)))
		want := []syncproto.Escalation{{By: cadreTwoA, ByName: "王芳", Reason: "对方情绪激动，需民警上门", At: op.At, OpID: op.ID}}
		if d := cmp.Diff(want, res.Warning.Escalations); d != "" {
			t.Fatalf("escalations (-want +got):\n%s", d)
		}
	})

	t.Run("AgainWhileOpenKeepsBothReasons", func(t *testing.T) {
		first := mustApply(t, w(), escalateOp("第一次"), testEnv(cadre(cadreTwoA))).Warning
		second := escalateOp("第二次")
		second.ID = id(9002)
		res := mustApply(t, first, second, testEnv(townActor))
		if !res.Changed || len(res.Warning.Escalations) != 2 || res.Warning.Escalations[1].Reason != "第二次" {
			t.Fatalf("changed %v escalations %+v", res.Changed, res.Warning.Escalations)
		}
	})

	t.Run("SameOpTwiceIsNoOp", func(t *testing.T) {
		op := escalateOp("again")
		once := mustApply(t, w(), op, testEnv(townActor)).Warning
		res := mustApply(t, once, op, testEnv(townActor))
		if res.Changed || len(res.Warning.Escalations) != 1 {
			t.Fatalf("changed %v escalations %d", res.Changed, len(res.Warning.Escalations))
		}
	})

	for _, a := range []syncproto.Actor{cadre(cadreOther), otherTownActor} {
		t.Run("OutOfScopeForbidden_"+a.Role, func(t *testing.T) {
			mustReject(t, w(), escalateOp("x"), testEnv(a), syncproto.CodeForbidden)
		})
	}
}

func TestApply_Review(t *testing.T) {
	resolved := func() *syncproto.Warning {
		w := realisticWarning() // resolved, version 13, newest attempt version 13
		w.Flags = append(w.Flags,
			syncproto.Flag{Code: syncproto.FlagFutureTime, OpID: id(10502), Detail: "ahead"},
			syncproto.Flag{Code: syncproto.FlagAfterClose, OpID: id(10400), Detail: "old", Resolved: true},
		)
		return w
	}

	t.Run("ApproveClosesAndResolvesFlags", func(t *testing.T) {
		w := resolved()
		op := reviewOp(syncproto.DecisionApprove, w.Version)
		res := mustApply(t, w, op, testEnv(townActor))
		n := res.Warning
		requireStatus(t, n, syncproto.WarningClosed)
		requireTime(t, "closed_at", n.ClosedAt, now)
		requireFlags(t, res, op)
		if n.OpenFlags() != 0 || len(n.Flags) != 3 {
			t.Fatalf("%d flags, %d open: want 3, none open", len(n.Flags), n.OpenFlags())
		}
		want := syncproto.Review{By: townLead, Decision: syncproto.DecisionApprove, Comment: op.Body.Comment, At: op.At}
		if len(n.Reviews) != 2 {
			t.Fatalf("%d reviews, want 2", len(n.Reviews))
		}
		assertEqual(t, want, n.Reviews[1])
		if n.Version != 42 {
			t.Fatalf("version %d", n.Version)
		}
	})

	for _, status := range allStatuses {
		if status == syncproto.WarningResolved {
			continue
		}
		t.Run("ApproveFrom_"+status+"_InvalidState", func(t *testing.T) {
			mustReject(t, statusWarning(status), reviewOp(syncproto.DecisionApprove, 10), testEnv(townActor), syncproto.CodeInvalidState)
		})
	}

	for _, status := range []string{syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed} {
		t.Run("ReturnFrom_"+status, func(t *testing.T) {
			w := resolved()
			w.Status = status
			w.ClosedAt = timePtr(warnedAt.Add(55 * time.Minute))
			res := mustApply(t, w, reviewOp(syncproto.DecisionReturn, w.Version), testEnv(countyActor))
			n := res.Warning
			requireStatus(t, n, syncproto.WarningAssigned)
			if n.Assignee != cadreTwoA || n.ResolvedAt != nil || n.ClosedAt != nil {
				t.Fatalf("assignee %s resolved_at %v closed_at %v", n.Assignee, n.ResolvedAt, n.ClosedAt)
			}
			if n.OpenFlags() != w.OpenFlags() {
				t.Fatalf("a return resolved flags: %d open, want %d", n.OpenFlags(), w.OpenFlags())
			}
			if last := n.Reviews[len(n.Reviews)-1]; last.Decision != syncproto.DecisionReturn || last.By != countyUser {
				t.Fatalf("last review %+v", last)
			}
		})
	}

	for _, status := range []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned} {
		t.Run("ReturnFrom_"+status+"_InvalidState", func(t *testing.T) {
			mustReject(t, statusWarning(status), reviewOp(syncproto.DecisionReturn, 10), testEnv(townActor), syncproto.CodeInvalidState)
		})
	}

	for _, tc := range []struct {
		decision string
		base     uint64
		stale    bool
	}{
		{syncproto.DecisionApprove, 12, true},
		{syncproto.DecisionApprove, 13, false},
		{syncproto.DecisionApprove, 20, false},
		{syncproto.DecisionReturn, 0, true},
		{syncproto.DecisionReturn, 13, false},
	} {
		t.Run("StaleReview_"+tc.decision+"_"+map[bool]string{true: "Old", false: "Current"}[tc.stale], func(t *testing.T) {
			op := reviewOp(tc.decision, tc.base)
			res := mustApply(t, resolved(), op, testEnv(townActor))
			if !tc.stale {
				requireFlags(t, res, op)
				return
			}
			// The stale flag stays open even on approve: the lead did not see
			// the newest attempt.
			requireFlags(t, res, op, syncproto.FlagStaleReview)
			if res.Warning.OpenFlags() != 1 && tc.decision == syncproto.DecisionApprove {
				t.Fatalf("%d open flags after a stale approve, want only the stale_review", res.Warning.OpenFlags())
			}
		})
	}

	for _, tc := range []struct {
		name  string
		actor syncproto.Actor
	}{
		{"VillageForbidden", cadre(cadreTwoA)},
		{"OutOfScopeForbidden", otherTownActor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustReject(t, resolved(), reviewOp(syncproto.DecisionApprove, 13), testEnv(tc.actor), syncproto.CodeForbidden)
		})
	}
}

func TestApply_Envelope(t *testing.T) {
	t.Run("InvalidOp", func(t *testing.T) {
		op := recordOp("not-a-uuid", syncproto.OutcomeDissuaded, true)
		requireField(t, mustReject(t, newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), op, testEnv(townActor), syncproto.CodeInvalidRequest), "body.id")
	})
	t.Run("NoWarning", func(t *testing.T) {
		mustReject(t, nil, escalateOp("x"), testEnv(townActor), syncproto.CodeNotFound)
	})
	t.Run("OtherWarning", func(t *testing.T) {
		op := escalateOp("x")
		op.WarningID = id(2)
		requireField(t, mustReject(t, newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), op, testEnv(townActor), syncproto.CodeInvalidRequest), "warning_id")
	})
	t.Run("VersionIsEnvVersion", func(t *testing.T) {
		env := testEnv(townActor)
		for _, v := range []uint64{11, 1 << 40} {
			env.Version = v
			if got := mustApply(t, newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), escalateOp("x"), env).Warning.Version; got != v {
				t.Fatalf("version %d, want %d", got, v)
			}
		}
	})
}

// snapshot is an encoding of v that shares nothing with it.
func snapshot(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// scribble changes every part of w that could be shared with another state.
func scribble(w *syncproto.Warning) {
	w.Status, w.Unit, w.Assignee = "x", "x", "x"
	for _, p := range []*time.Time{w.DispatchedAt, w.AssignedAt, w.FirstContactAt, w.ResolvedAt, w.ClosedAt} {
		if p != nil {
			*p = time.Time{}
		}
	}
	for i := range w.Attempts {
		a := &w.Attempts[i]
		a.Notes = "x"
		if a.Location != nil {
			a.Location.Lat = 0
		}
		for j := range a.Photos {
			a.Photos[j] = "x"
		}
	}
	for i := range w.Reviews {
		w.Reviews[i].Comment = "x"
	}
	for i := range w.Flags {
		w.Flags[i].Resolved = !w.Flags[i].Resolved
	}
	for i := range w.PastAssignees {
		w.PastAssignees[i] = "x"
	}
	for i := range w.MissingPhotos {
		w.MissingPhotos[i] = "x"
	}
}

func TestApply_NeverMutatesInput(t *testing.T) {
	withLocation := recordOp(id(601), syncproto.OutcomeDissuaded, true)
	withLocation.Body.Location = &syncproto.Location{Lat: 34, Lng: 113}
	withLocation.Body.Photos = []string{strings.Repeat("cd", 32)}
	for _, tc := range []struct {
		name   string
		status string
		op     *syncproto.Op
		actor  syncproto.Actor
	}{
		{"Record", syncproto.WarningResolved, withLocation, cadre(cadreTwoB)},
		{"RecordDuplicate", syncproto.WarningResolved, recordOp(id(502), syncproto.OutcomeRefused, true), cadre(cadreTwoA)},
		{"Approve", syncproto.WarningResolved, reviewOp(syncproto.DecisionApprove, 1), townActor},
		{"Return", syncproto.WarningClosed, reviewOp(syncproto.DecisionReturn, 13), townActor},
		{"Dispatch", syncproto.WarningInProgress, dispatchOp(villageOne), townActor},
		{"Assign", syncproto.WarningInProgress, assignOp(cadreTwoB), townActor},
		{"Escalate", syncproto.WarningInProgress, escalateOp("x"), townActor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := realisticWarning()
			w.Status = tc.status
			w.Escalated = false
			w.AssignedAt = timePtr(warnedAt.Add(5 * time.Minute))
			w.DispatchedAt = timePtr(warnedAt.Add(4 * time.Minute))
			w.ClosedAt = timePtr(warnedAt.Add(59 * time.Minute))
			before, opBefore := snapshot(t, w), snapshot(t, tc.op)
			res := mustApply(t, w, tc.op, testEnv(tc.actor))
			if snapshot(t, w) != before {
				t.Fatal("Apply changed its input warning")
			}
			if snapshot(t, tc.op) != opBefore {
				t.Fatal("Apply changed its op")
			}
			if !res.Changed {
				if tc.name != "RecordDuplicate" {
					t.Fatal("op had no effect")
				}
				return
			}
			// The new state shares no memory with the old one.
			scribble(res.Warning)
			if snapshot(t, w) != before {
				t.Fatal("the new state shares memory with the input")
			}
		})
	}
}

func TestCreate(t *testing.T) {
	feed := func(unit string) *syncproto.FeedWarning {
		return &syncproto.FeedWarning{
			ExternalID: "GJFZ-20240501-000777",
			Name:       "陈桂英",
			Phone:      "13900139000",
			IDTail:     "0021",
			Address:    "许昌市魏都区建设社区8号院",
			Unit:       unit,
			FraudType:  "虚假投资理财",
			Risk:       syncproto.RiskMedium,
			WarnedAt:   warnedAt.In(syncproto.Beijing),
		}
	}
	env := func(a syncproto.Actor) syncproto.Env {
		e := testEnv(a)
		e.Version = 7
		return e
	}

	for _, tc := range []struct {
		name     string
		actor    syncproto.Actor
		unit     string
		status   string
		assignee string
	}{
		{"OwnUnitIsNew", centerActor, cityUnit, syncproto.WarningNew, ""},
		{"CountyImporterOwnUnitIsNew", countyActor, countyUnit, syncproto.WarningNew, ""},
		{"TownshipIsDispatched", centerActor, townUnit, syncproto.WarningDispatched, ""},
		{"VillageWithTwoCadresIsDispatched", centerActor, villageTwo, syncproto.WarningDispatched, ""},
		{"VillageWithoutActiveCadreIsDispatched", centerActor, villageNone, syncproto.WarningDispatched, ""},
		{"VillageWithOneCadreIsAssigned", centerActor, villageOne, syncproto.WarningAssigned, cadreOne},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feed(tc.unit)
			w := syncproto.Create(warningID, f, env(tc.actor), nil)
			requireStatus(t, w, tc.status)
			if w.Assignee != tc.assignee || w.Unit != tc.unit {
				t.Fatalf("assignee %q unit %s, want %q %s", w.Assignee, w.Unit, tc.assignee, tc.unit)
			}
			switch tc.status {
			case syncproto.WarningNew:
				if w.DispatchedAt != nil || w.AssignedAt != nil {
					t.Fatalf("a new warning has dispatched_at %v assigned_at %v", w.DispatchedAt, w.AssignedAt)
				}
			case syncproto.WarningDispatched:
				requireTime(t, "dispatched_at", w.DispatchedAt, now)
				if w.AssignedAt != nil {
					t.Fatal("assigned_at set")
				}
			case syncproto.WarningAssigned:
				requireTime(t, "dispatched_at", w.DispatchedAt, now)
				requireTime(t, "assigned_at", w.AssignedAt, now)
			}
			want := &syncproto.Warning{
				ID: warningID, ExternalID: f.ExternalID, Name: f.Name, Phone: f.Phone, IDTail: f.IDTail,
				Address: f.Address, Unit: tc.unit, FraudType: f.FraudType, Risk: f.Risk,
				WarnedAt: warnedAt, ReceivedAt: now, Deadline: warnedAt.Add(syncproto.DefaultDeadlines[syncproto.RiskMedium]),
				DispatchedAt: w.DispatchedAt, AssignedAt: w.AssignedAt, Status: tc.status, Assignee: tc.assignee,
				Attempts: []syncproto.Attempt{}, Reviews: []syncproto.Review{}, Flags: []syncproto.Flag{}, Version: 7,
			}
			assertEqual(t, want, w)
			if w.WarnedAt.Location() != time.UTC || w.ReceivedAt.Location() != time.UTC {
				t.Fatal("times not in UTC")
			}
		})
	}

	policy := syncproto.DeadlinePolicy{syncproto.RiskHigh: time.Hour, syncproto.RiskMedium: 6 * time.Hour, syncproto.RiskLow: 24 * time.Hour}
	for _, tc := range []struct {
		name   string
		risk   string
		policy syncproto.DeadlinePolicy
		want   time.Duration
	}{
		{"PolicyHigh", syncproto.RiskHigh, policy, time.Hour},
		{"PolicyMedium", syncproto.RiskMedium, policy, 6 * time.Hour},
		{"PolicyLow", syncproto.RiskLow, policy, 24 * time.Hour},
		{"DefaultHigh", syncproto.RiskHigh, nil, 2 * time.Hour},
		{"DefaultMedium", syncproto.RiskMedium, nil, 12 * time.Hour},
		{"DefaultLow", syncproto.RiskLow, nil, 48 * time.Hour},
		{"PolicyWithoutRiskFallsBack", syncproto.RiskLow, syncproto.DeadlinePolicy{syncproto.RiskHigh: time.Minute}, 48 * time.Hour},
	} {
		t.Run("Deadline_"+tc.name, func(t *testing.T) {
			f := feed(villageTwo)
			f.Risk = tc.risk
			w := syncproto.Create(warningID, f, env(centerActor), tc.policy)
			if want := warnedAt.Add(tc.want); !w.Deadline.Equal(want) {
				t.Fatalf("deadline %s, want %s", w.Deadline, want)
			}
		})
	}

	t.Run("Deadline_FromFeed", func(t *testing.T) {
		f := feed(villageTwo)
		f.Risk = syncproto.RiskHigh
		f.Deadline = timePtr(warnedAt.Add(5 * time.Hour).In(syncproto.Beijing))
		w := syncproto.Create(warningID, f, env(centerActor), policy)
		if !w.Deadline.Equal(*f.Deadline) || w.Deadline.Location() != time.UTC {
			t.Fatalf("deadline %s, want the feed's %s in UTC", w.Deadline, f.Deadline)
		}
	})
}

// validOps is a valid op of each type a client sends.
func validOps() map[string]*syncproto.Op {
	rec := recordOp(id(501), syncproto.OutcomeAlreadyDefrauded, true)
	rec.Body.LossFen = 5000
	rec.Body.Location = &syncproto.Location{Lat: -90, Lng: 180, Accuracy: 3}
	rec.Body.Photos = []string{strings.Repeat("a1", 32)}
	rec.Body.Notes = strings.Repeat("劝", syncproto.MaxNotesLen)
	rev := reviewOp(syncproto.DecisionReturn, 10)
	rev.Body.Comment = strings.Repeat("核", syncproto.MaxCommentLen)
	return map[string]*syncproto.Op{
		syncproto.OpDispatched: dispatchOp(villageOne),
		syncproto.OpAssigned:   assignOp(cadreOne),
		syncproto.OpRecorded:   rec,
		syncproto.OpEscalated:  escalateOp(strings.Repeat("急", syncproto.MaxCommentLen)),
		syncproto.OpReviewed:   rev,
	}
}

func TestOp_Validate(t *testing.T) {
	for typ, op := range validOps() {
		t.Run("Valid_"+typ, func(t *testing.T) {
			if err := op.Validate(); err != nil {
				t.Fatalf("valid %s: %v", typ, err)
			}
		})
	}

	for _, tc := range []struct {
		name  string
		typ   string
		edit  func(*syncproto.Op)
		field string
	}{
		{"IDNotUUID", syncproto.OpEscalated, func(o *syncproto.Op) { o.ID = "op-1" }, "id"},
		{"IDUppercase", syncproto.OpEscalated, func(o *syncproto.Op) { o.ID = strings.ToUpper(id(9)) }, "id"},
		{"IDNoDashes", syncproto.OpEscalated, func(o *syncproto.Op) { o.ID = strings.ReplaceAll(id(9), "-", "") }, "id"},
		{"ClientSeqZero", syncproto.OpEscalated, func(o *syncproto.Op) { o.ClientSeq = 0 }, "client_seq"},
		{"WarningIDMissing", syncproto.OpEscalated, func(o *syncproto.Op) { o.WarningID = "" }, "warning_id"},
		{"AtZero", syncproto.OpEscalated, func(o *syncproto.Op) { o.At = time.Time{} }, "at"},
		{"At1970", syncproto.OpEscalated, func(o *syncproto.Op) { o.At = time.Unix(0, 0) }, "at"},
		{"AtBeyondYear9999", syncproto.OpRecorded, func(o *syncproto.Op) { o.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "at"},
		{"TypeUnknown", syncproto.OpEscalated, func(o *syncproto.Op) { o.Type = "warning.deleted" }, "type"},
		{"TypeServerOnly", syncproto.OpEscalated, func(o *syncproto.Op) { o.Type = syncproto.OpCreated }, "type"},
		{"TypeEmpty", syncproto.OpEscalated, func(o *syncproto.Op) { o.Type = "" }, "type"},
		{"UnitFiveDigits", syncproto.OpDispatched, func(o *syncproto.Op) { o.Body.Unit = "41100" }, "body.unit"},
		{"UnitLetters", syncproto.OpDispatched, func(o *syncproto.Op) { o.Body.Unit = "41a0" }, "body.unit"},
		{"UnitMissing", syncproto.OpDispatched, func(o *syncproto.Op) { o.Body.Unit = "" }, "body.unit"},
		{"AssigneeNotUUID", syncproto.OpAssigned, func(o *syncproto.Op) { o.Body.Assignee = "cadre1" }, "body.assignee"},
		{"AttemptIDMissing", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.AttemptID = "" }, "body.id"},
		{"MethodUnknown", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Method = "sms" }, "body.method"},
		{"ReachedMissing", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Reached = nil }, "body.reached"},
		{"OutcomeUnknown", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Outcome = "maybe" }, "body.outcome"},
		{"LossNegative", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.LossFen = -1 }, "body.loss_fen"},
		{"LossWithoutDefrauded", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Outcome = syncproto.OutcomeDissuaded }, "body.loss_fen"},
		{"NotesTooLong", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Notes += "劝" }, "body.notes"},
		{"TooManyPhotos", syncproto.OpRecorded, func(o *syncproto.Op) {
			o.Body.Photos = slices.Repeat([]string{strings.Repeat("a1", 32)}, syncproto.MaxPhotos+1)
		}, "body.photos"},
		{"PhotoUppercase", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Photos = []string{strings.Repeat("A1", 32)} }, "body.photos"},
		{"PhotoShort", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Photos = []string{"abc"} }, "body.photos"},
		{"LatTooBig", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lat = 90.5 }, "body.location"},
		{"LngTooSmall", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lng = -180.5 }, "body.location"},
		{"LatNaN", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lat = math.NaN() }, "body.location"},
		{"LngNaN", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lng = math.NaN() }, "body.location"},
		{"AccuracyNaN", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Accuracy = math.NaN() }, "body.location"},
		{"AccuracyInf", syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Accuracy = math.Inf(1) }, "body.location"},
		{"ReasonMissing", syncproto.OpEscalated, func(o *syncproto.Op) { o.Body.Reason = "" }, "body.reason"},
		{"ReasonTooLong", syncproto.OpEscalated, func(o *syncproto.Op) { o.Body.Reason += "急" }, "body.reason"},
		{"DecisionUnknown", syncproto.OpReviewed, func(o *syncproto.Op) { o.Body.Decision = "reject" }, "body.decision"},
		{"CommentTooLong", syncproto.OpReviewed, func(o *syncproto.Op) { o.Body.Comment += "核" }, "body.comment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := validOps()[tc.typ]
			tc.edit(op)
			requireField(t, op.Validate(), tc.field)
		})
	}
}

func TestFeedWarning_Validate(t *testing.T) {
	valid := func() *syncproto.FeedWarning {
		return &syncproto.FeedWarning{
			ExternalID: strings.Repeat("x", 128),
			Name:       strings.Repeat("张", 100),
			Phone:      strings.Repeat("1", 32),
			IDTail:     "1234567X",
			Address:    strings.Repeat("路", 300),
			Unit:       villageOne,
			FraudType:  strings.Repeat("骗", 50),
			Risk:       syncproto.RiskLow,
			WarnedAt:   now.Add(syncproto.FutureSkew),
			Deadline:   timePtr(now.Add(syncproto.FutureSkew)),
		}
	}
	if err := valid().Validate(now); err != nil {
		t.Fatalf("valid row: %v", err)
	}
	t.Run("AddressWithoutPhone", func(t *testing.T) {
		f := valid()
		f.Phone = ""
		if err := f.Validate(now); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name  string
		edit  func(*syncproto.FeedWarning)
		field string
	}{
		{"ExternalIDMissing", func(f *syncproto.FeedWarning) { f.ExternalID = "" }, "external_id"},
		{"ExternalIDTooLong", func(f *syncproto.FeedWarning) { f.ExternalID += "x" }, "external_id"},
		{"NameMissing", func(f *syncproto.FeedWarning) { f.Name = "" }, "name"},
		{"NameTooLong", func(f *syncproto.FeedWarning) { f.Name += "张" }, "name"},
		{"NoPhoneNorAddress", func(f *syncproto.FeedWarning) { f.Phone, f.Address = "", "" }, "phone"},
		{"PhoneTooLong", func(f *syncproto.FeedWarning) { f.Phone += "1" }, "phone"},
		{"IDTailTooLong", func(f *syncproto.FeedWarning) { f.IDTail = "123456789" }, "id_tail"},
		{"AddressTooLong", func(f *syncproto.FeedWarning) { f.Address += "路" }, "address"},
		{"UnitMissing", func(f *syncproto.FeedWarning) { f.Unit = "" }, "unit"},
		{"UnitBadLength", func(f *syncproto.FeedWarning) { f.Unit = "4110020010" }, "unit"},
		{"FraudTypeMissing", func(f *syncproto.FeedWarning) { f.FraudType = "" }, "fraud_type"},
		{"FraudTypeTooLong", func(f *syncproto.FeedWarning) { f.FraudType += "骗" }, "fraud_type"},
		{"RiskUnknown", func(f *syncproto.FeedWarning) { f.Risk = "extreme" }, "risk"},
		{"RiskMissing", func(f *syncproto.FeedWarning) { f.Risk = "" }, "risk"},
		{"WarnedAtZero", func(f *syncproto.FeedWarning) { f.WarnedAt = time.Time{} }, "warned_at"},
		{"WarnedAtFuture", func(f *syncproto.FeedWarning) { f.WarnedAt = now.Add(syncproto.FutureSkew + time.Second) }, "warned_at"},
		{"DeadlineBeforeWarning", func(f *syncproto.FeedWarning) { f.Deadline = timePtr(f.WarnedAt.Add(-time.Second)) }, "deadline"},
		{"DeadlineBeyondYear9999", func(f *syncproto.FeedWarning) { f.Deadline = timePtr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) }, "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := valid()
			tc.edit(f)
			requireField(t, f.Validate(now), tc.field)
		})
	}
}
