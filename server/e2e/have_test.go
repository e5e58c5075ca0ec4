package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// haveStory is a cadre's phone that holds its warning as a pull brought
// it, pushed an op on it, and computed the state the server made of it
// (PROTOCOL.md section 4, have and kept).
type haveStory struct {
	c      *city
	a1     *servertest.Device
	id     string
	cursor string // a1's cursor before the push
	// candidate is the state a1 computed, and its have entry.
	candidate *syncproto.Warning
	have      syncproto.Have
}

// newHaveStory imports a warning for a1, pulls it, pushes an attempt
// on it and computes the state after the attempt, as the SDK does.
func newHaveStory(t *testing.T, codec syncproto.Codec) *haveStory {
	t.Helper()
	ctx := context.Background()
	c := newCity(t, codec, nil)
	a1 := c.dev["a1"]
	resp, err := c.dev["center1"].ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("H1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	s := &haveStory{c: c, a1: a1, id: resp.Created[0].ID}
	got, last := pullAll(t, a1, "", 0)
	base := warningOf(t, got, s.id)
	s.cursor = last.Cursor
	o := op(a1, syncproto.OpRecorded, s.id, base.Version, recordBody(syncproto.OutcomeRefused, true))
	pushed := push(t, a1, o)
	mustApplied(t, pushed.Results[0])
	if pushed.ReceivedAt.IsZero() {
		t.Fatal("the push response has no received_at")
	}
	u := a1.Login.User
	p := syncproto.ApplyPushed(base, &o, syncproto.Env{
		Actor:   syncproto.Actor{UserID: u.ID, Role: u.Role, Unit: u.Unit, DeviceID: a1.ID},
		Version: pushed.Results[0].Version, Now: pushed.ReceivedAt,
	})
	if p.Warning == nil {
		t.Fatalf("the attempt changed nothing on the phone: %+v", p.Result)
	}
	s.candidate = p.Warning
	s.have = syncproto.Have{ID: s.id, Version: p.Result.Version, Hash: mustHash(t, p.Warning)}
	return s
}

func mustHash(t *testing.T, w *syncproto.Warning) string {
	t.Helper()
	h, err := syncproto.StateHash(w)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pull asks for one page from cursor with have.
func (s *haveStory) pull(t *testing.T, cursor, detail string, have ...syncproto.Have) *syncproto.PullResponse {
	t.Helper()
	resp, err := s.a1.Pull(context.Background(), syncproto.PullRequest{DeviceID: s.a1.ID, Cursor: cursor, Detail: detail, Have: have})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	return resp
}

// wantSent fails t unless resp carries the warning's put and keeps nothing.
func (s *haveStory) wantSent(t *testing.T, resp *syncproto.PullResponse) *syncproto.Warning {
	t.Helper()
	if len(resp.Kept) != 0 {
		t.Fatalf("kept %v, want none", resp.Kept)
	}
	for _, ch := range resp.Changes {
		if ch.ID == s.id && ch.Kind == syncproto.ChangePut {
			return ch.Data.(*syncproto.Warning)
		}
	}
	t.Fatalf("the page does not carry warning %s: %+v", s.id, resp.Changes)
	return nil
}

// TestPull_Have: a pull leaves out the put of a warning the phone holds
// already, by version and state hash, and sends it whenever either
// differs, or the pull is a first one, a reset or a summary.
func TestPull_Have(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.MediaType(), func(t *testing.T) {
			t.Run("Kept", func(t *testing.T) { haveKept(t, codec) })
			t.Run("Mismatch", func(t *testing.T) { haveMismatch(t, codec) })
			t.Run("ChangedInBetween", func(t *testing.T) { haveChangedInBetween(t, codec) })
			t.Run("Ignored", func(t *testing.T) { haveIgnored(t, codec) })
			t.Run("Invalid", func(t *testing.T) { haveInvalid(t, codec) })
		})
	}
}

// haveKept: the right have leaves the put out, names it in kept and moves
// the cursor past it; the phone's state is the server's to the byte.
func haveKept(t *testing.T, codec syncproto.Codec) {
	s := newHaveStory(t, codec)
	resp := s.pull(t, s.cursor, "", s.have)
	if len(resp.Changes) != 0 {
		t.Fatalf("changes %+v, want none", resp.Changes)
	}
	if len(resp.Kept) != 1 || resp.Kept[0] != s.id {
		t.Fatalf("kept %v, want [%s]", resp.Kept, s.id)
	}
	if resp.More || resp.Remaining != 0 || resp.LastClientSeq != 1 || resp.Cursor == s.cursor {
		t.Fatalf("more %v, remaining %d, last_client_seq %d, cursor moved %v", resp.More, resp.Remaining, resp.LastClientSeq, resp.Cursor != s.cursor)
	}
	if next := s.pull(t, resp.Cursor, "", s.have); len(next.Changes) != 0 || len(next.Kept) != 0 {
		t.Fatalf("after the kept page: changes %+v, kept %v", next.Changes, next.Kept)
	}
	// What the phone keeps is what the server holds.
	server := s.wantSent(t, s.pull(t, s.cursor, ""))
	if got, want := mustHash(t, s.candidate), mustHash(t, server); got != want {
		t.Fatalf("the phone's state hashes %s, the server's %s", got, want)
	}
	// A kept put costs nothing of the byte budget: with a budget of one
	// byte, a page that keeps the warning goes on to the next change.
	ctx := context.Background()
	if _, err := s.c.dev["center1"].ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("H2", unitVillA1, syncproto.RiskLow, time.Now().Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	budget := syncproto.PullRequest{DeviceID: s.a1.ID, Cursor: s.cursor, MaxBytes: 1}
	without, err := s.a1.Pull(ctx, budget)
	if err != nil {
		t.Fatal(err)
	}
	if len(without.Changes) != 1 || without.Changes[0].ID != s.id || !without.More {
		t.Fatalf("without have: changes %+v, more %v; want the pushed warning alone, more true", without.Changes, without.More)
	}
	budget.Have = []syncproto.Have{s.have}
	with, err := s.a1.Pull(ctx, budget)
	if err != nil {
		t.Fatal(err)
	}
	if len(with.Kept) != 1 || len(with.Changes) != 1 || with.Changes[0].ID == s.id || with.More {
		t.Fatalf("with have: kept %v, changes %+v, more %v; want the pushed warning kept, the new one sent, more false", with.Kept, with.Changes, with.More)
	}
}

// haveMismatch: another hash or an older version gets the put.
func haveMismatch(t *testing.T, codec syncproto.Codec) {
	s := newHaveStory(t, codec)
	wrong := s.have
	wrong.Hash = "0000000000000000"
	if wrong.Hash == s.have.Hash {
		wrong.Hash = "1111111111111111"
	}
	got := s.wantSent(t, s.pull(t, s.cursor, "", wrong))
	if got.Version != s.have.Version {
		t.Fatalf("sent version %d, want %d", got.Version, s.have.Version)
	}
	older := s.have
	older.Version--
	s.wantSent(t, s.pull(t, s.cursor, "", older))
	// A have of a warning the page does not carry changes nothing.
	other := s.have
	other.ID = "0190a3b2-0000-7000-8000-000000000001"
	resp := s.pull(t, s.cursor, "", other)
	s.wantSent(t, resp)
}

// haveChangedInBetween: a lead's op after the cadre's makes the state the
// phone computed stale, so the put is sent.
func haveChangedInBetween(t *testing.T, codec syncproto.Codec) {
	s := newHaveStory(t, codec)
	leadA := s.c.dev["leadA"]
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpEscalated, s.id, s.have.Version, syncproto.OpBody{Reason: "需要派出所协助"})).Results[0])
	got := s.wantSent(t, s.pull(t, s.cursor, "", s.have))
	if !got.Escalated {
		t.Fatal("the sent state lacks the lead's escalation")
	}
}

// haveIgnored: a first pull, a reset and a summary pull send the put
// whatever the have says.
func haveIgnored(t *testing.T, codec syncproto.Codec) {
	s := newHaveStory(t, codec)
	s.wantSent(t, s.pull(t, "", "", s.have))
	got := s.wantSent(t, s.pull(t, s.cursor, syncproto.DetailSummary, s.have))
	if !got.Summary {
		t.Fatal("a summary pull sent a full warning")
	}
	// A cursor of another store resets.
	other := syncproto.Cursor{Seq: 1, Scope: syncproto.ScopeHash([]string{"user/x"})}.Encode()
	resp := s.pull(t, other, "", s.have)
	if !resp.Reset {
		t.Fatal("a foreign cursor did not reset")
	}
	s.wantSent(t, resp)
}

// haveInvalid: more entries than the limit, or a malformed one, is 400
// invalid_request naming the field.
func haveInvalid(t *testing.T, codec syncproto.Codec) {
	s := newHaveStory(t, codec)
	for _, tc := range []struct {
		name  string
		limit int
		have  []syncproto.Have
		field string
	}{
		{"OverTheLimit", 1, []syncproto.Have{s.have, s.have}, "have"},
		{"OverTheDefaultLimit", 0, make([]syncproto.Have, syncproto.DefaultPullLimit+1), "have"},
		{"BadID", 0, []syncproto.Have{{ID: "W1", Version: 1, Hash: s.have.Hash}}, "have[0].id"},
		{"NoVersion", 0, []syncproto.Have{{ID: s.id, Hash: s.have.Hash}}, "have[0].version"},
		{"BadHash", 0, []syncproto.Have{s.have, {ID: s.id, Version: 1, Hash: "ABCDEF0123456789"}}, "have[1].hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.a1.Pull(context.Background(), syncproto.PullRequest{DeviceID: s.a1.ID, Cursor: s.cursor, Limit: tc.limit, Have: tc.have})
			pe := syncproto.AsError(err)
			if pe == nil || pe.Code != syncproto.CodeInvalidRequest || pe.Details["field"] != tc.field {
				t.Fatalf("err %v, want invalid_request on field %s", err, tc.field)
			}
		})
	}
}
