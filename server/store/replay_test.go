package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Replay writes each push as received at its own time, whatever the
// store's clock says, in one call.
func TestStore_Replay(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(fixtureStart)
	st, err := store.Open(t.TempDir(), store.Options{Create: true, NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	users := servertest.LoadStore(t, st, servertest.City())
	center, a1 := users["center1"], users["a1"]
	cadre := a1.Actor("00000000-0000-4000-8000-0000000000a1")
	if _, err := st.Login(ctx, &a1, store.SignIn{DeviceID: cadre.DeviceID, Name: "phone", Platform: "test", RefreshTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	feed, err := st.ImportFeed(ctx, center.Actor(""), []store.FeedRow{{Num: 1,
		Warning: servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskLow, fixtureStart.Add(-time.Hour))}})
	if err != nil || len(feed.Created) != 1 {
		t.Fatalf("import: %+v %v", feed, err)
	}
	id := feed.Created[0].ID
	attempt := func(seq uint64, outcome string, at time.Time) syncproto.Op {
		reached := outcome != syncproto.OutcomeUnreachable
		return syncproto.Op{ID: uuid.NewString(), ClientSeq: seq, Type: syncproto.OpRecorded, WarningID: id, At: at,
			Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: outcome}}
	}
	first, second := fixtureStart.Add(time.Hour), fixtureStart.Add(3*time.Hour)

	t.Run("EachAtItsTime", func(t *testing.T) {
		resps, err := st.Replay(ctx, []store.Replayed{
			{At: first, Actor: cadre, Ops: []syncproto.Op{attempt(1, syncproto.OutcomeUnreachable, first.Add(-10*time.Minute))}},
			{At: second, Actor: cadre, Ops: []syncproto.Op{attempt(2, syncproto.OutcomeDissuaded, second.Add(-5*time.Minute))}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, resp := range resps {
			if len(resp.Results) != 1 || resp.Results[0].Status != syncproto.StatusApplied {
				t.Fatalf("push %d: %+v", i, resp)
			}
		}
		w, err := st.Warning(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Attempts) != 2 || !w.Attempts[0].ReceivedAt.Equal(first) || !w.Attempts[1].ReceivedAt.Equal(second) {
			t.Fatalf("attempts %+v, want received at %s and %s", w.Attempts, first, second)
		}
		if w.Status != syncproto.WarningResolved || w.ResolvedAt == nil || !w.ResolvedAt.Equal(second) {
			t.Fatalf("status %s resolved at %v, want resolved at %s", w.Status, w.ResolvedAt, second)
		}
		if !clock.Now().Equal(fixtureStart) {
			t.Fatalf("the store's clock moved to %s", clock.Now())
		}
	})

	t.Run("RefusedPushEndsIt", func(t *testing.T) {
		stranger := a1.Actor(uuid.NewString()) // a device a1 never signed in on
		_, err := st.Replay(ctx, []store.Replayed{{At: second, Actor: stranger, Ops: []syncproto.Op{attempt(1, syncproto.OutcomeDissuaded, second)}}})
		if syncproto.ErrorCode(err) != syncproto.CodeForbidden {
			t.Fatalf("replay from an unknown device: %v, want forbidden", err)
		}
	})
}
