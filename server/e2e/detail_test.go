package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

type historyEntry struct {
	Seq        uint64            `json:"seq"`
	Type       string            `json:"type"`
	ActorID    string            `json:"actor_id"`
	ActorName  string            `json:"actor_name"`
	DeviceID   string            `json:"device_id"`
	ReceivedAt time.Time         `json:"received_at"`
	Op         *syncproto.Op     `json:"op"`
	Result     *syncproto.Result `json:"result"`
}

type warningDetail struct {
	Warning *syncproto.Warning `json:"warning"`
	History []historyEntry     `json:"history"`
}

// TestWarningDetail: a warning's history comes from the log, in scope only,
// and every read of it is audited for the admins of its unit.
func TestWarningDetail(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	center, leadA, leadB, a2x, a2y := c.dev["center1"], c.dev["leadA"], c.dev["leadB"], c.dev["a2x"], c.dev["a2y"]
	resp, err := center.ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("D1", unitVillA2, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Created[0].ID
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpAssigned, id, 0, syncproto.OpBody{Assignee: c.userIDs["a2x"]})).Results[0])
	mustApplied(t, push(t, a2x, op(a2x, syncproto.OpRecorded, id, 0, recordBody(syncproto.OutcomeRefused, true))).Results[0])
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpAssigned, id, 0, syncproto.OpBody{Assignee: c.userIDs["a2y"]})).Results[0])
	late := push(t, a2x, op(a2x, syncproto.OpRecorded, id, 0, recordBody(syncproto.OutcomeDissuaded, true))).Results[0]
	mustApplied(t, late)
	// A lead's op the rules refuse is history; an outsider's is not.
	rejected := push(t, leadA, op(leadA, syncproto.OpDispatched, id, 0, syncproto.OpBody{Unit: unitVillA1})).Results[0]
	if rejected.Code != syncproto.CodeInvalidState {
		t.Fatalf("dispatch of a resolved warning: %+v", rejected)
	}
	if r := push(t, leadB, op(leadB, syncproto.OpEscalated, id, 0, syncproto.OpBody{Reason: "不在辖区"})).Results[0]; r.Code != syncproto.CodeForbidden {
		t.Fatalf("outsider escalation: %+v", r)
	}
	outsider := recordBody(syncproto.OutcomeDissuaded, true)
	outsider.Notes = "外人写下的备注"
	if r := push(t, c.dev["b1"], op(c.dev["b1"], syncproto.OpRecorded, id, 0, outsider)).Results[0]; r.Code != syncproto.CodeForbidden {
		t.Fatalf("outsider record: %+v", r)
	}
	// The refused op is logged, without what it said about the person.
	if err := c.srv.Store.EachLogEntry(func(seq uint64, e *store.LogEntry) error {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(outsider.Notes)) {
			t.Errorf("log entry %d keeps a refused op's notes", seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	get := func(d interface {
		DoRaw(context.Context, string, string, string, []byte, any) error
	}) (*warningDetail, error) {
		var out warningDetail
		err := d.DoRaw(ctx, http.MethodGet, "/v1/warnings/"+id, "", nil, &out)
		return &out, err
	}
	var d warningDetail
	if err := leadA.Do(ctx, http.MethodGet, "/v1/warnings/"+id, nil, &d); err != nil {
		t.Fatal(err)
	}
	want := []string{syncproto.OpCreated, syncproto.OpAssigned, syncproto.OpRecorded, syncproto.OpAssigned, syncproto.OpRecorded, syncproto.OpDispatched}
	if len(d.History) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(d.History), len(want), d.History)
	}
	for i, h := range d.History {
		if h.Type != want[i] {
			t.Fatalf("history[%d] = %s, want %s", i, h.Type, want[i])
		}
		if i > 0 && h.Seq <= d.History[i-1].Seq {
			t.Fatalf("history out of order at %d", i)
		}
	}
	if h := d.History[4]; h.ActorID != c.userIDs["a2x"] || h.DeviceID != a2x.ID || h.ActorName == "" || h.Result == nil ||
		len(h.Result.Flags) != 1 || h.Result.Flags[0].Code != syncproto.FlagStaleAssignee || h.Op == nil || h.Op.ID != late.OpID {
		t.Fatalf("late record entry: %+v", h)
	}
	if h := d.History[5]; h.Result == nil || h.Result.Status != syncproto.StatusRejected || h.Result.OpID != rejected.OpID {
		t.Fatalf("rejected review entry: %+v", h)
	}
	if d.Warning == nil || d.Warning.Name == "" || len(d.Warning.Attempts) != 2 {
		t.Fatalf("detail state: %+v", d.Warning)
	}

	// Scope: the assignee may read it; the former assignee no longer holds
	// it, and another township's lead never did: both learn nothing.
	if _, err := get(a2y.Client); err != nil {
		t.Fatalf("assignee: %v", err)
	}
	if _, err := get(a2x.Client); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("former assignee: %v", err)
	}
	if _, err := get(leadB.Client); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("leadB: %v", err)
	}
	if _, err := get(c.dev["b1"].Client); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("b1: %v", err)
	}
	var bad warningDetail
	if err := leadA.Do(ctx, http.MethodGet, "/v1/warnings/NOT-A-UUID", nil, &bad); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("bad id: %v", err)
	}

	// Audit: the reads that succeeded, by leadA and a2y.
	var page app.AuditPage
	if err := c.admin.Do(ctx, http.MethodGet, "/v1/admin/audit", nil, &page); err != nil {
		t.Fatal(err)
	}
	readers := map[string]int{}
	for _, e := range page.Entries {
		if e.WarningID != id {
			t.Fatalf("audit entry for %s", e.WarningID)
		}
		readers[e.Username]++
	}
	if fmt.Sprint(readers) != "map[a2y:1 leadA:1]" {
		t.Fatalf("audit readers %v", readers)
	}
	var next app.AuditPage
	if err := c.admin.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/admin/audit?after=%d", page.Next), nil, &next); err != nil || len(next.Entries) != 0 {
		t.Fatalf("audit after the last: %+v %v", next, err)
	}
	if err := leadA.Do(ctx, http.MethodGet, "/v1/admin/audit", nil, &page); errCode(err) != syncproto.CodeForbidden {
		t.Fatalf("non-admin audit: %v", err)
	}
	// A township admin sees only its township's reads.
	adminB := syncproto.UserInput{Username: "adminB", Password: testPassword, Name: "乙管理员", Unit: unitTownB, Admin: new(true)}
	if _, err := c.admin.UpsertUsers(ctx, []syncproto.UserInput{adminB}); err != nil {
		t.Fatal(err)
	}
	var bpage app.AuditPage
	if err := c.srv.Login(t, "adminB", testPassword).Do(ctx, http.MethodGet, "/v1/admin/audit", nil, &bpage); err != nil || len(bpage.Entries) != 0 {
		t.Fatalf("township B admin sees %+v %v", bpage.Entries, err)
	}
}
