package e2e_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestNumbers_LossOverflow replays the attack on the official figures: a
// recorder sends an already_defrauded attempt with loss_fen 2^62 on two
// warnings, which once turned a township's total loss into about -9.2e18.
// Each such push is refused whole with 400 invalid_request naming the
// field, and the warnings, the log, the device's client_seq and the
// figures stay as they were. A loss at the bound is taken.
func TestNumbers_LossOverflow(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, nil, nil)
	srv, center, a1, leadA := c.srv, c.dev["center1"], c.dev["a1"], c.dev["leadA"]
	warned := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	feed, err := center.ImportFeed(ctx, []syncproto.FeedWarning{
		servertest.FeedRow("LOSS-1", unitVillA1, syncproto.RiskHigh, warned), servertest.FeedRow("LOSS-2", unitVillA1, syncproto.RiskHigh, warned),
	})
	if err != nil || len(feed.Created) != 2 {
		t.Fatalf("import: %+v %v", feed, err)
	}
	w1, w2 := feed.Created[0].ID, feed.Created[1].ID
	const realLoss = 5_050_700
	honest := recordBody(syncproto.OutcomeAlreadyDefrauded, true)
	honest.LossFen = realLoss
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, w1, 0, honest)).Results[0])

	townLoss := func() int64 {
		t.Helper()
		var s syncproto.StatsResponse
		if err := leadA.Do(ctx, http.MethodGet, "/v1/stats", nil, &s); err != nil {
			t.Fatalf("stats: %v", err)
		}
		return s.Total.LossFen
	}
	if got := townLoss(); got != realLoss {
		t.Fatalf("township loss %d before the attack, want %d", got, realLoss)
	}
	type snapshot struct {
		lastSeq, lastClientSeq uint64
		versions               [2]uint64
		attempts               [2]int
		townLoss               int64
	}
	snap := func() snapshot {
		t.Helper()
		resp, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID, Cursor: "", Limit: 1})
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		s := snapshot{lastSeq: srv.LastSeq(t), lastClientSeq: resp.LastClientSeq, townLoss: townLoss()}
		for i, id := range []string{w1, w2} {
			w, err := srv.Store.Warning(id)
			if err != nil || w == nil {
				t.Fatalf("warning %s: %v", id, err)
			}
			s.versions[i], s.attempts[i] = w.Version, len(w.Attempts)
		}
		return s
	}
	before := snap()

	now := time.Now().UTC()
	attack := func(seq uint64, warningID string, loss any) obj {
		return obj{"id": uuid.NewString(), "client_seq": seq, "type": syncproto.OpRecorded, "warning_id": warningID, "base_version": 0, "at": now,
			"body": obj{"id": uuid.NewString(), "method": "phone", "reached": true, "outcome": "already_defrauded", "loss_fen": loss, "notes": "x"}}
	}
	next := before.lastClientSeq + 1
	for _, tc := range []struct {
		name  string
		codec syncproto.Codec
		loss  any
	}{
		{"TwoToThe62/JSON", syncproto.JSON, int64(1) << 62},
		{"TwoToThe62/MessagePack", syncproto.Msgpack, int64(1) << 62},
		{"MaxInt64/JSON", syncproto.JSON, int64(math.MaxInt64)},
		{"JustOverTheBound/MessagePack", syncproto.Msgpack, int64(syncproto.MaxLossFen + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := obj{"device_id": a1.ID, "ops": []any{attack(next, w1, tc.loss), attack(next+1, w2, tc.loss)}}
			r := send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: a1.Token(), ContentType: tc.codec.MediaType(), Body: mustEncode(t, tc.codec, body)})
			e := wantError(t, r, http.StatusBadRequest, syncproto.CodeInvalidRequest)
			wantField(t, e, "ops[0].body.loss_fen")
			if !strings.Contains(e.Message, "1000000000000") {
				t.Errorf("message %q does not say what the largest loss is", e.Message)
			}
			if after := snap(); after != before {
				t.Fatalf("a refused push changed the store: before %+v, after %+v", before, after)
			}
		})
	}

	// The bound itself is a loss the server takes, and the figures add it
	// exactly.
	atBound := recordBody(syncproto.OutcomeAlreadyDefrauded, true)
	atBound.LossFen = syncproto.MaxLossFen
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, w2, 0, atBound)).Results[0])
	if got, want := townLoss(), int64(realLoss+syncproto.MaxLossFen); got != want {
		t.Fatalf("township loss %d, want %d", got, want)
	}
}
