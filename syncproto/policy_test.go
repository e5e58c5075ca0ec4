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
