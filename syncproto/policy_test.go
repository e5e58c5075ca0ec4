package syncproto_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestCanRead: a warning is read by its current cadre until it is
// archived, and by the leads of its unit and the units above it.
func TestCanRead(t *testing.T) {
	assigned := newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA)
	assigned.PastAssignees = []string{cadreTwoB}
	archived := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
	archived.ArchivedAt = timePtr(now)
	unassigned := newWarning(syncproto.WarningDispatched, villageTwo, "")
	for _, tc := range []struct {
		name  string
		actor syncproto.Actor
		w     *syncproto.Warning
		want  bool
	}{
		{"Assignee", cadre(cadreTwoA), assigned, true},
		{"FormerAssignee", cadre(cadreTwoB), assigned, false},
		{"OtherCadreOfTheVillage", cadre(cadreTwoB), unassigned, false},
		{"CadreElsewhere", cadre(cadreOther), assigned, false},
		{"AssigneeAfterArchive", cadre(cadreTwoA), archived, false},
		{"VillageUserWithoutID", syncproto.Actor{Role: syncproto.RoleVillage, Unit: villageTwo}, unassigned, false},
		{"TownshipLead", townActor, assigned, true},
		{"TownshipLeadAfterArchive", townActor, archived, true},
		{"OtherTownshipLead", otherTownActor, assigned, false},
		{"County", countyActor, assigned, true},
		{"Center", centerActor, archived, true},
		{"OtherCounty", syncproto.Actor{UserID: id(205), Role: syncproto.RoleCounty, Unit: otherCounty}, assigned, false},
		{"NoUnit", syncproto.Actor{UserID: id(206), Role: syncproto.RoleCenter}, assigned, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := syncproto.CanRead(tc.actor, tc.w); got != tc.want {
				t.Fatalf("CanRead = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWarning_HeldBy(t *testing.T) {
	w := newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA)
	w.PastAssignees = []string{cadreTwoB}
	if !w.HeldBy(cadreTwoA) {
		t.Error("the assignee does not hold the warning")
	}
	if w.HeldBy(cadreTwoB) || w.HeldBy("") {
		t.Error("a former assignee or nobody holds the warning")
	}
	w.ArchivedAt = timePtr(now)
	if w.HeldBy(cadreTwoA) {
		t.Error("the assignee still holds an archived warning")
	}
	if u := newWarning(syncproto.WarningDispatched, villageTwo, ""); u.HeldBy("") {
		t.Error("an unassigned warning is held by nobody")
	}
}

// located is a recorded attempt by cadreTwoA with notes and a location:
// what it says about the person.
func located(attemptID string) *syncproto.Op {
	op := recordOp(attemptID, syncproto.OutcomeDissuaded, true)
	op.Body.Location = &syncproto.Location{Lat: 34.0357, Lng: 113.8523, Accuracy: 12.5}
	return op
}

// TestApplyPushed: what the answer, the stored state, the log and the
// warning's history get of a pushed op.
func TestApplyPushed(t *testing.T) {
	const (
		kept     = "kept"     // the log keeps the op as sent
		personal = "personal" // without notes and location
		text     = "text"     // without any free text
	)
	closedArchived := func() *syncproto.Warning {
		w := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
		w.ClosedAt, w.ArchivedAt = timePtr(now), timePtr(now)
		return w
	}
	held := withAttempts(1)
	for _, tc := range []struct {
		name      string
		w         *syncproto.Warning
		op        *syncproto.Op
		env       syncproto.Env
		status    string
		code      string
		version   uint64
		changed   bool
		logged    string
		inHistory bool
	}{
		{"Applied", newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), located(id(601)), testEnv(cadre(cadreTwoA)),
			syncproto.StatusApplied, "", 42, true, kept, true},
		{"AlreadyHeld", held, recordOp(held.Attempts[0].ID, syncproto.OutcomeUnreachable, false), testEnv(cadre(cadreTwoA)),
			syncproto.StatusApplied, "", 10, false, kept, true},
		{"UnknownWarning", nil, located(id(602)), testEnv(cadre(cadreTwoA)),
			syncproto.StatusRejected, syncproto.CodeForbidden, 0, false, personal, false},
		{"UnknownWarningInvalidOp", nil, newOp(syncproto.OpRecorded, syncproto.OpBody{Notes: "无"}), testEnv(cadre(cadreTwoA)),
			syncproto.StatusRejected, syncproto.CodeInvalidRequest, 0, false, kept, false},
		{"OutsideScope", newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), located(id(603)), testEnv(cadre(cadreFar)),
			syncproto.StatusRejected, syncproto.CodeForbidden, 0, false, personal, false},
		{"WarningFull", withAttempts(5), located(id(604)), limitedEnv(cadre(cadreTwoA), syncproto.WarningLimits{MaxAttempts: 5}),
			syncproto.StatusRejected, syncproto.CodeWarningFull, 0, false, text, false},
		{"EscalationPastTheSize", newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), escalateOp("家属不配合，需派出所上门"),
			limitedEnv(cadre(cadreTwoA), syncproto.WarningLimits{MaxBytes: 1}),
			syncproto.StatusRejected, syncproto.CodeWarningFull, 0, false, text, false},
		{"InvalidState", newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), reviewOp(syncproto.DecisionApprove, 10), testEnv(townActor),
			syncproto.StatusRejected, syncproto.CodeInvalidState, 0, false, kept, true},
		{"OnAnArchivedWarning", closedArchived(), located(id(605)), testEnv(cadre(cadreTwoA)),
			syncproto.StatusApplied, "", 42, true, kept, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before *syncproto.Warning
			if tc.w != nil {
				before = tc.w.Clone()
			}
			sent := *tc.op
			p := syncproto.ApplyPushed(tc.w, tc.op, tc.env)
			r := p.Result
			if r.OpID != tc.op.ID || r.ClientSeq != tc.op.ClientSeq || r.Status != tc.status || r.Code != tc.code || r.Version != tc.version {
				t.Fatalf("result %+v, want status %s, code %q, version %d", r, tc.status, tc.code, tc.version)
			}
			if tc.code != "" && r.Message == "" {
				t.Error("a rejection without a message")
			}
			if (p.Warning != nil) != tc.changed {
				t.Errorf("new state %v, want one: %v", p.Warning != nil, tc.changed)
			}
			if p.InHistory != tc.inHistory {
				t.Errorf("in history %v, want %v", p.InHistory, tc.inHistory)
			}
			want := sent
			switch tc.logged {
			case personal:
				want.Body.Notes, want.Body.Location = "", nil
			case text:
				want.Body.Notes, want.Body.Location, want.Body.Comment, want.Body.Reason = "", nil, "", ""
			}
			assertEqual(t, &want, p.Logged)
			// Neither input changes: the store's cached state and the
			// request's op are shared.
			assertEqual(t, &sent, tc.op)
			if tc.w != nil {
				assertEqual(t, before, tc.w)
			}
		})
	}
}

// TestApplyPushed_UnknownLooksForbidden: a warning that does not exist is
// answered as one outside the actor's scope.
func TestApplyPushed_UnknownLooksForbidden(t *testing.T) {
	p := syncproto.ApplyPushed(nil, located(id(611)), testEnv(cadre(cadreTwoA)))
	if p.Result.Code != syncproto.CodeForbidden || p.Result.Message != "warning "+warningID+" is unknown or outside your scope" {
		t.Fatalf("result %+v", p.Result)
	}
	far := syncproto.ApplyPushed(newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA), located(id(612)), testEnv(cadre(cadreFar)))
	if far.Result.Code != p.Result.Code || far.Result.Status != p.Result.Status {
		t.Fatalf("outside the scope %+v, unknown %+v: want the same code", far.Result, p.Result)
	}
}

// TestApplyPushed_Archive: a returned warning goes back to its cadre's
// phone; one that stays closed stays archived.
func TestApplyPushed_Archive(t *testing.T) {
	closed := func() *syncproto.Warning {
		w := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
		w.ClosedAt, w.ArchivedAt = timePtr(now), timePtr(now)
		return w
	}
	returned := syncproto.ApplyPushed(closed(), reviewOp(syncproto.DecisionReturn, 10), testEnv(townActor))
	if w := returned.Warning; w == nil || w.Status != syncproto.WarningAssigned || w.ArchivedAt != nil {
		t.Fatalf("returned: %+v", returned.Warning)
	}
	if !returned.Warning.HeldBy(cadreTwoA) {
		t.Fatal("a returned warning is not back with its cadre")
	}
	late := syncproto.ApplyPushed(closed(), located(id(621)), testEnv(cadre(cadreTwoA)))
	if w := late.Warning; w == nil || w.Status != syncproto.WarningClosed || w.ArchivedAt == nil {
		t.Fatalf("recorded after close: %+v", late.Warning)
	}
	escalated := syncproto.ApplyPushed(closed(), escalateOp("家属不配合"), testEnv(cadre(cadreTwoA)))
	if w := escalated.Warning; w == nil || w.ArchivedAt == nil {
		t.Fatalf("escalated after close: %+v", escalated.Warning)
	}
}

// TestApplyPushed_Redacted: an op that lands on a warning whose personal
// data was erased is erased at once, in the state and in the log; its
// counts survive.
func TestApplyPushed_Redacted(t *testing.T) {
	w := newWarning(syncproto.WarningClosed, villageTwo, cadreTwoA)
	w.ClosedAt, w.ArchivedAt, w.RedactedAt = timePtr(now), timePtr(now), timePtr(now)
	w.Redact()
	op := located(id(631))
	p := syncproto.ApplyPushed(w, op, testEnv(cadre(cadreTwoA)))
	if p.Result.Status != syncproto.StatusApplied || p.Warning == nil {
		t.Fatalf("result %+v", p.Result)
	}
	got := p.Warning
	last := got.Attempts[len(got.Attempts)-1]
	if got.Name != "" || got.Phone != "" || got.Address != "" || last.Notes != "" || last.Location != nil {
		t.Fatalf("the new state keeps personal data: %+v", got)
	}
	if !last.Reached || last.Outcome != syncproto.OutcomeDissuaded {
		t.Fatalf("the attempt lost what statistics count: %+v", last)
	}
	if p.Logged.Body.Notes != "" || p.Logged.Body.Location != nil {
		t.Fatalf("the log keeps personal data: %+v", p.Logged.Body)
	}
	if !p.InHistory {
		t.Fatal("an applied op is not in the warning's history")
	}
}
