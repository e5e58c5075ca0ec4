package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSync walks the whole loop over real HTTP, once per encoding. Its
// steps are a story: each works on what the steps before it left.
func TestSync(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.MediaType(), func(t *testing.T) {
			s := newSyncStory(t, codec)
			t.Run("Feed", s.feed)
			t.Run("PullScope", s.pullScope)
			t.Run("EveryOpType", s.everyOpType)
			t.Run("ExactlyOnce", s.exactlyOnce)
			t.Run("Reassign", s.reassign)
			t.Run("Flags", s.flags)
			t.Run("Paging", s.paging)
			t.Run("Reset", s.reset)
		})
	}
}

// syncStory is the small city that TestSync's steps work on, a device per
// user, and the warnings the feed step created by external id.
type syncStory struct {
	codec                                  syncproto.Codec
	c                                      *city
	center, leadA, leadB, a1, a2x, a2y, b1 *servertest.Device
	warned                                 time.Time
	ids                                    map[string]string
}

func newSyncStory(t *testing.T, codec syncproto.Codec) *syncStory {
	t.Helper()
	c := newCity(t, codec, nil)
	return &syncStory{codec: codec, c: c,
		center: c.dev["center1"], leadA: c.dev["leadA"], leadB: c.dev["leadB"],
		a1: c.dev["a1"], a2x: c.dev["a2x"], a2y: c.dev["a2y"], b1: c.dev["b1"],
		warned: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
}

// feed imports a day's feed through the API and as CSV: good rows are
// created, duplicates and bad rows reported by row; only the center
// imports.
func (s *syncStory) feed(t *testing.T) {
	ctx := context.Background()
	rows := []syncproto.FeedWarning{
		servertest.FeedRow("W1", unitVillA1, syncproto.RiskHigh, s.warned),
		servertest.FeedRow("W2", unitVillA2, syncproto.RiskMedium, s.warned),
		servertest.FeedRow("W3", unitTownA, syncproto.RiskLow, s.warned),
		servertest.FeedRow("W4", unitVillB1, syncproto.RiskHigh, s.warned),
		servertest.FeedRow("W5", unitCity, syncproto.RiskMedium, s.warned),
		servertest.FeedRow("W1", unitVillA1, syncproto.RiskHigh, s.warned), // duplicate
		servertest.FeedRow("BADRISK", unitVillA1, "extreme", s.warned),
		servertest.FeedRow("NOUNIT", "411002009009", syncproto.RiskLow, s.warned),
	}
	resp, err := s.center.ImportFeed(ctx, rows)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(resp.Created) != 5 {
		t.Fatalf("created %d, want 5: %+v", len(resp.Created), resp)
	}
	if len(resp.Duplicates) != 1 || resp.Duplicates[0] != "W1" {
		t.Fatalf("duplicates = %v, want [W1]", resp.Duplicates)
	}
	if len(resp.Invalid) != 2 || resp.Invalid[0].Row != 7 || resp.Invalid[1].Row != 8 {
		t.Fatalf("invalid = %+v, want rows 7 and 8", resp.Invalid)
	}
	s.ids = map[string]string{}
	for _, cr := range resp.Created {
		s.ids[cr.ExternalID] = cr.ID
	}
	// The same feed again creates nothing.
	again, err := s.center.ImportFeed(ctx, rows[:5])
	if err != nil || len(again.Created) != 0 || len(again.Duplicates) != 5 {
		t.Fatalf("re-import: %+v %v", again, err)
	}
	// CSV: one good row, one bad.
	var sb strings.Builder
	if err := feed.WriteCSV(&sb, []syncproto.FeedWarning{servertest.FeedRow("C1", unitVillB1, syncproto.RiskLow, s.warned), servertest.FeedRow("C2", unitVillB1, "bad", s.warned)}); err != nil {
		t.Fatal(err)
	}
	csvResp, err := s.center.ImportFeedCSV(ctx, []byte(sb.String()))
	if err != nil {
		t.Fatalf("csv import: %v", err)
	}
	if len(csvResp.Created) != 1 || len(csvResp.Invalid) != 1 || csvResp.Invalid[0].Row != 2 {
		t.Fatalf("csv import = %+v", csvResp)
	}
	s.ids["C1"] = csvResp.Created[0].ID
	// Only the center (or an admin) imports.
	if _, err := s.leadA.ImportFeed(ctx, rows[:1]); errCode(err) != syncproto.CodeForbidden {
		t.Fatalf("lead import: %v, want forbidden", err)
	}
}

// pullScope: each user pulls exactly the warnings and directory of their
// scope; a one-cadre village's warning is assigned at once.
func (s *syncStory) pullScope(t *testing.T) {
	got, _ := pullAll(t, s.a1, "", 0)
	if w := warningIDs(got); len(w) != 1 || !w[s.ids["W1"]] {
		t.Fatalf("a1 pulled %v, want only W1", w)
	}
	w1 := warningOf(t, got, s.ids["W1"])
	if w1.Status != syncproto.WarningAssigned || w1.Assignee != s.c.userIDs["a1"] {
		t.Fatalf("W1 = %s assigned to %s; want auto-assigned to a1", w1.Status, w1.Assignee)
	}
	if len(got) != 1 {
		t.Fatalf("a village cadre got the directory: %v", got)
	}
	got, _ = pullAll(t, s.leadA, "", 0)
	if w := warningIDs(got); len(w) != 3 || !w[s.ids["W1"]] || !w[s.ids["W2"]] || !w[s.ids["W3"]] {
		t.Fatalf("leadA pulled %v, want W1 W2 W3", w)
	}
	if warningOf(t, got, s.ids["W2"]).Status != syncproto.WarningDispatched {
		t.Fatalf("W2 at a two-cadre village should wait for assignment")
	}
	for _, key := range []string{"unit/" + unitTownA, "unit/" + unitVillA1, "unit/" + unitVillA2, "user/" + s.c.userIDs["a2x"], "user/" + s.c.userIDs["a2y"], "user/" + s.c.userIDs["a1"]} {
		if _, ok := got[key]; !ok {
			t.Fatalf("leadA's directory lacks %s", key)
		}
	}
	for _, key := range []string{"unit/" + unitTownB, "user/" + s.c.userIDs["b1"], "user/" + s.c.userIDs["leadA"]} {
		if _, ok := got[key]; ok {
			t.Fatalf("leadA's directory holds %s", key)
		}
	}
	got, _ = pullAll(t, s.leadB, "", 0)
	if w := warningIDs(got); len(w) != 2 || !w[s.ids["W4"]] || !w[s.ids["C1"]] {
		t.Fatalf("leadB pulled %v, want W4 and C1", w)
	}
	got, _ = pullAll(t, s.center, "", 0)
	if w := warningIDs(got); len(w) != 6 {
		t.Fatalf("center pulled %d warnings, want 6", len(w))
	}
}

// everyOpType pushes every kind of op, each by a role allowed it, and the
// ops a role is not allowed.
func (s *syncStory) everyOpType(t *testing.T) {
	resp := push(t, s.leadA,
		op(s.leadA, syncproto.OpAssigned, s.ids["W2"], 0, syncproto.OpBody{Assignee: s.c.userIDs["a2x"]}),
		op(s.leadA, syncproto.OpDispatched, s.ids["W3"], 0, syncproto.OpBody{Unit: unitVillA1}),
	)
	for _, r := range resp.Results {
		mustApplied(t, r)
	}
	got, _ := pullAll(t, s.a1, "", 0)
	w3 := warningOf(t, got, s.ids["W3"])
	if w3.Unit != unitVillA1 || w3.Assignee != s.c.userIDs["a1"] || w3.Status != syncproto.WarningAssigned {
		t.Fatalf("dispatch to a one-cadre village: %+v", w3)
	}
	resp = push(t, s.a1,
		op(s.a1, syncproto.OpRecorded, s.ids["W1"], 0, recordBody(syncproto.OutcomeDissuaded, true)),
		op(s.a1, syncproto.OpEscalated, s.ids["W3"], 0, syncproto.OpBody{Reason: "对方情绪激动，需民警协助"}),
	)
	for _, r := range resp.Results {
		mustApplied(t, r)
	}
	got, _ = pullAll(t, s.leadA, "", 0)
	w1 := warningOf(t, got, s.ids["W1"])
	if w1.Status != syncproto.WarningResolved || w1.Outcome != syncproto.OutcomeDissuaded || len(w1.Attempts) != 1 || w1.FirstContactAt == nil {
		t.Fatalf("W1 after dissuasion: %+v", w1)
	}
	if !warningOf(t, got, s.ids["W3"]).Escalated {
		t.Fatalf("W3 not escalated")
	}
	resp = push(t, s.leadA, op(s.leadA, syncproto.OpReviewed, s.ids["W1"], w1.Version, syncproto.OpBody{Decision: syncproto.DecisionApprove, Comment: "属实"}))
	mustApplied(t, resp.Results[0])
	got, _ = pullAll(t, s.a1, "", 0)
	if w := warningOf(t, got, s.ids["W1"]); w.Status != syncproto.WarningClosed || w.ClosedAt == nil {
		t.Fatalf("W1 after approve: %s", w.Status)
	}
	// Approving again is invalid_state: only resolved work is approved.
	resp = push(t, s.leadA, op(s.leadA, syncproto.OpReviewed, s.ids["W1"], 0, syncproto.OpBody{Decision: syncproto.DecisionApprove}))
	if r := resp.Results[0]; r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeInvalidState {
		t.Fatalf("second approve: %+v", r)
	}
	// Return reopens it for the assignee.
	resp = push(t, s.leadA, op(s.leadA, syncproto.OpReviewed, s.ids["W1"], 0, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "补充照片"}))
	mustApplied(t, resp.Results[0])
	got, _ = pullAll(t, s.a1, "", 0)
	if w := warningOf(t, got, s.ids["W1"]); w.Status != syncproto.WarningAssigned || len(w.Reviews) != 2 {
		t.Fatalf("W1 after return: %s with %d reviews", w.Status, len(w.Reviews))
	}
	// A cadre may not review, dispatch or assign.
	resp = push(t, s.a1,
		op(s.a1, syncproto.OpReviewed, s.ids["W1"], 0, syncproto.OpBody{Decision: syncproto.DecisionApprove}),
		op(s.a1, syncproto.OpDispatched, s.ids["W1"], 0, syncproto.OpBody{Unit: unitVillA1}),
	)
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeForbidden {
			t.Fatalf("cadre manager op: %+v", r)
		}
	}
	// A lead may not act outside the township.
	resp = push(t, s.leadB, op(s.leadB, syncproto.OpAssigned, s.ids["W2"], 0, syncproto.OpBody{Assignee: s.c.userIDs["b1"]}))
	if r := resp.Results[0]; r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeForbidden {
		t.Fatalf("leadB on township A: %+v", r)
	}
}

// exactlyOnce: a batch sent again, even at once from many connections,
// takes effect once; a gap in client_seq fails the request with where to
// resume; a used client_seq with another op id changes nothing.
func (s *syncStory) exactlyOnce(t *testing.T) {
	ctx := context.Background()
	batch := []syncproto.Op{
		op(s.a1, syncproto.OpRecorded, s.ids["W3"], 0, recordBody(syncproto.OutcomeUnreachable, false)),
		op(s.a1, syncproto.OpRecorded, s.ids["W3"], 0, recordBody(syncproto.OutcomeRefused, true)),
	}
	first := push(t, s.a1, batch...)
	again := push(t, s.a1, batch...)
	for i := range batch {
		mustApplied(t, first.Results[i])
		r := again.Results[i]
		if r.Status != syncproto.StatusDuplicate || r.Version != first.Results[i].Version || r.OpID != batch[i].ID {
			t.Fatalf("replay %d: %+v, first %+v", i, r, first.Results[i])
		}
	}
	// Concurrent replays of one batch: one effect.
	conc := []syncproto.Op{
		op(s.a1, syncproto.OpRecorded, s.ids["W3"], 0, recordBody(syncproto.OutcomeRefused, true)),
		op(s.a1, syncproto.OpRecorded, s.ids["W3"], 0, recordBody(syncproto.OutcomeRefused, true)),
	}
	var wg sync.WaitGroup
	applied := make([]int, 8)
	for g := range applied {
		wg.Go(func() {
			resp, err := s.a1.Push(ctx, syncproto.PushRequest{DeviceID: s.a1.ID, Ops: conc})
			if err != nil {
				t.Errorf("concurrent push: %v", err)
				return
			}
			for _, r := range resp.Results {
				if r.Status == syncproto.StatusApplied {
					applied[g]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range applied {
		total += n
	}
	if total != 2 {
		t.Fatalf("%d applications across concurrent replays, want 2", total)
	}
	got, _ := pullAll(t, s.a1, "", 0)
	if n := len(warningOf(t, got, s.ids["W3"]).Attempts); n != 4 {
		t.Fatalf("W3 holds %d attempts, want 4", n)
	}
	// A gap fails the whole request with where to resume.
	next := s.a1.NextSeq()
	skip := op(s.a1, syncproto.OpEscalated, s.ids["W3"], 0, syncproto.OpBody{Reason: "gap"})
	_, err := s.a1.Push(ctx, syncproto.PushRequest{DeviceID: s.a1.ID, Ops: []syncproto.Op{skip}})
	if errCode(err) != syncproto.CodeOutOfOrder {
		t.Fatalf("gap: %v, want out_of_order", err)
	}
	if d := protoErr(err).Details["expected_client_seq"]; fmt.Sprint(d) != fmt.Sprint(next) {
		t.Fatalf("expected_client_seq = %v, want %d", d, next)
	}
	fill := syncproto.Op{ID: uuid.NewString(), ClientSeq: next, Type: syncproto.OpEscalated, WarningID: s.ids["W3"], At: time.Now().UTC(), Body: syncproto.OpBody{Reason: "fill"}}
	resp := push(t, s.a1, fill, skip)
	mustApplied(t, resp.Results[0])
	mustApplied(t, resp.Results[1])
	// A used client_seq with another op id is seq_reused and changes nothing.
	reused := fill
	reused.ID = uuid.NewString()
	reused.Body = recordBody(syncproto.OutcomeDissuaded, true)
	reused.Type = syncproto.OpRecorded
	resp = push(t, s.a1, reused)
	if r := resp.Results[0]; r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeSeqReused {
		t.Fatalf("reused seq: %+v", r)
	}
	got, _ = pullAll(t, s.a1, "", 0)
	if w := warningOf(t, got, s.ids["W3"]); w.Status == syncproto.WarningResolved {
		t.Fatalf("a seq_reused op was applied")
	}
}

// reassign moves W2 from a2x to a2y: the old assignee is sent a remove,
// the new one the warning.
func (s *syncStory) reassign(t *testing.T) {
	ctx := context.Background()
	_, xBefore := pullAll(t, s.a2x, "", 0)
	got, _ := pullAll(t, s.a2x, "", 0)
	if !warningIDs(got)[s.ids["W2"]] {
		t.Fatalf("a2x does not hold W2")
	}
	resp := push(t, s.leadA, op(s.leadA, syncproto.OpAssigned, s.ids["W2"], 0, syncproto.OpBody{Assignee: s.c.userIDs["a2y"]}))
	mustApplied(t, resp.Results[0])
	page, err := s.a2x.Pull(ctx, syncproto.PullRequest{DeviceID: s.a2x.ID, Cursor: xBefore.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Kind != syncproto.ChangeRemove || page.Changes[0].ID != s.ids["W2"] || page.Changes[0].Data != nil {
		t.Fatalf("old assignee got %+v, want one remove of W2", page.Changes)
	}
	got, _ = pullAll(t, s.a2y, "", 0)
	if w := warningOf(t, got, s.ids["W2"]); w.Assignee != s.c.userIDs["a2y"] || len(w.PastAssignees) != 1 {
		t.Fatalf("new assignee: %+v", w)
	}
}

// flags: offline work that crossed the reassignment, a close and a
// review is kept and flagged for the lead.
func (s *syncStory) flags(t *testing.T) {
	// The former assignee recorded offline before the reassignment.
	resp := push(t, s.a2x, op(s.a2x, syncproto.OpRecorded, s.ids["W2"], 0, recordBody(syncproto.OutcomeDissuaded, true)))
	mustApplied(t, resp.Results[0])
	if !resultHasFlag(resp.Results[0], syncproto.FlagStaleAssignee) {
		t.Fatalf("former assignee: flags %+v", resp.Results[0].Flags)
	}
	// Another outcome from the new assignee conflicts.
	resp = push(t, s.a2y, op(s.a2y, syncproto.OpRecorded, s.ids["W2"], 0, recordBody(syncproto.OutcomeNotTarget, true)))
	if !resultHasFlag(resp.Results[0], syncproto.FlagConflictingOutcomes) {
		t.Fatalf("conflicting outcome: %+v", resp.Results[0])
	}
	// A review made before the newest attempt is stale.
	resp = push(t, s.leadA, op(s.leadA, syncproto.OpReviewed, s.ids["W2"], 1, syncproto.OpBody{Decision: syncproto.DecisionApprove}))
	mustApplied(t, resp.Results[0])
	if !resultHasFlag(resp.Results[0], syncproto.FlagStaleReview) {
		t.Fatalf("stale review: %+v", resp.Results[0])
	}
	// Recorded after the close, with a phone clock an hour ahead.
	late := op(s.a2y, syncproto.OpRecorded, s.ids["W2"], 0, recordBody(syncproto.OutcomeRefused, true))
	late.At = time.Now().Add(time.Hour).UTC()
	resp = push(t, s.a2y, late)
	mustApplied(t, resp.Results[0])
	if !resultHasFlag(resp.Results[0], syncproto.FlagAfterClose) || !resultHasFlag(resp.Results[0], syncproto.FlagFutureTime) {
		t.Fatalf("late op flags: %+v", resp.Results[0].Flags)
	}
	got, _ := pullAll(t, s.leadA, "", 0)
	w2 := warningOf(t, got, s.ids["W2"])
	if w2.Status != syncproto.WarningClosed || w2.Outcome != syncproto.OutcomeNotTarget {
		t.Fatalf("W2 = %s/%s; an inconclusive attempt never reopens", w2.Status, w2.Outcome)
	}
	for _, code := range []string{syncproto.FlagStaleAssignee, syncproto.FlagConflictingOutcomes, syncproto.FlagStaleReview, syncproto.FlagAfterClose, syncproto.FlagFutureTime} {
		if !hasFlag(w2, code) {
			t.Fatalf("W2 lacks flag %s: %+v", code, w2.Flags)
		}
	}
	// The approve resolved the flags it found; its own stale_review and the
	// later ones stay open for the next review.
	if w2.OpenFlags() != 3 {
		t.Fatalf("open flags = %d, want 3 (stale_review, after_close, future_time): %+v", w2.OpenFlags(), w2.Flags)
	}
	// A cadre of another village who was never assignee is refused.
	resp = push(t, s.b1, op(s.b1, syncproto.OpRecorded, s.ids["W2"], 0, recordBody(syncproto.OutcomeDissuaded, true)))
	if r := resp.Results[0]; r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeForbidden {
		t.Fatalf("outsider record: %+v", r)
	}
}

// paging: a pull in small pages ends with what one pull gives.
func (s *syncStory) paging(t *testing.T) {
	ctx := context.Background()
	all, _ := pullAll(t, s.leadA, "", 0)
	first, err := s.leadA.Pull(ctx, syncproto.PullRequest{DeviceID: s.leadA.ID, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Changes) != 2 || !first.More || first.Remaining <= 0 {
		t.Fatalf("first page: %d changes more=%v remaining=%d", len(first.Changes), first.More, first.Remaining)
	}
	paged, last := pullAll(t, s.leadA, "", 2)
	if len(paged) != len(all) {
		t.Fatalf("paged pull holds %d records, whole pull %d", len(paged), len(all))
	}
	for k, ch := range all {
		if paged[k].Version != ch.Version {
			t.Fatalf("%s: paged version %d, whole %d", k, paged[k].Version, ch.Version)
		}
	}
	// Nothing new: an empty page.
	again, err := s.leadA.Pull(ctx, syncproto.PullRequest{DeviceID: s.leadA.ID, Cursor: last.Cursor})
	if err != nil || len(again.Changes) != 0 || again.More || again.Reset {
		t.Fatalf("no-change pull: %+v %v", again, err)
	}
	if _, err := s.leadA.Pull(ctx, syncproto.PullRequest{DeviceID: s.leadA.ID, Limit: syncproto.MaxPullLimit + 1}); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("limit over max: %v", err)
	}
}

// reset: a cursor of another scope or another store starts the pull
// over; a garbage cursor is refused.
func (s *syncStory) reset(t *testing.T) {
	ctx := context.Background()
	_, b := pullAll(t, s.leadB, "", 0)
	resp, err := s.leadA.Pull(ctx, syncproto.PullRequest{DeviceID: s.leadA.ID, Cursor: b.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Reset || len(resp.Changes) == 0 {
		t.Fatalf("cursor of another scope: reset=%v changes=%d", resp.Reset, len(resp.Changes))
	}
	other := servertest.Start(t, servertest.Options{Codec: s.codec})
	od := other.Admin(t)
	_, oc := pullAll(t, od, "", 0)
	resp, err = s.center.Pull(ctx, syncproto.PullRequest{DeviceID: s.center.ID, Cursor: oc.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Reset {
		t.Fatalf("cursor of another store: no reset")
	}
	if _, err := s.center.Pull(ctx, syncproto.PullRequest{DeviceID: s.center.ID, Cursor: "not-a-cursor"}); errCode(err) != syncproto.CodeCursorExpired {
		t.Fatalf("garbage cursor: %v", err)
	}
}

func resultHasFlag(r syncproto.Result, code string) bool {
	for _, f := range r.Flags {
		if f.Code == code {
			return true
		}
	}
	return false
}

func protoErr(err error) *syncproto.Error { return syncproto.AsError(err) }
