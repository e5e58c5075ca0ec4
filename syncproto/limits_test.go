package syncproto_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/vmihailenco/msgpack/v5"
)

// withAttempts is a warning in progress at villageTwo holding n attempts
// of cadreTwoA.
func withAttempts(n int) *syncproto.Warning {
	w := newWarning(syncproto.WarningInProgress, villageTwo, cadreTwoA)
	for i := range n {
		w.Attempts = append(w.Attempts, syncproto.Attempt{
			ID: id(20000 + i), By: cadreTwoA, DeviceID: id(402), Method: syncproto.MethodPhone,
			Outcome: syncproto.OutcomeUnreachable, Notes: "无人接听", At: warnedAt.Add(time.Duration(i) * time.Minute),
			ReceivedAt: warnedAt.Add(time.Duration(i) * time.Minute), Version: uint64(11 + i),
		})
	}
	return w
}

// limitedEnv is testEnv with limits.
func limitedEnv(a syncproto.Actor, l syncproto.WarningLimits) syncproto.Env {
	env := testEnv(a)
	env.Limits = l
	return env
}

func encodedSize(tb testing.TB, w *syncproto.Warning) int {
	tb.Helper()
	n, err := syncproto.MsgpackSize(w)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestApply_AttemptsCap: a warning holding MaxAttempts takes no more; the
// cadre is told why and what to do, and a retry of an attempt it already
// holds stays a no-op.
func TestApply_AttemptsCap(t *testing.T) {
	limits := syncproto.WarningLimits{MaxAttempts: 5}
	env := limitedEnv(cadre(cadreTwoA), limits)
	mustApply(t, withAttempts(4), recordOp(id(599), syncproto.OutcomeUnreachable, false), env)

	e := mustReject(t, withAttempts(5), recordOp(id(599), syncproto.OutcomeUnreachable, false), env, syncproto.CodeWarningFull)
	if !strings.Contains(e.Message, "5 attempts") || !strings.Contains(e.Message, "township lead") {
		t.Fatalf("message %q: want the count and what to do", e.Message)
	}

	held := recordOp(id(20000), syncproto.OutcomeUnreachable, false)
	if res := mustApply(t, withAttempts(5), held, env); res.Changed {
		t.Fatal("an attempt the full warning already holds changed it")
	}
}

// TestApply_SizeCap: an attempt that would take the warning past MaxBytes
// is rejected, however few attempts it holds; so are escalations whose
// flags would.
func TestApply_SizeCap(t *testing.T) {
	w := withAttempts(3)
	limits := syncproto.WarningLimits{MaxBytes: encodedSize(t, w) + 2000}
	env := limitedEnv(cadre(cadreTwoA), limits)

	mustApply(t, w, recordOp(id(599), syncproto.OutcomeUnreachable, false), env)

	long := recordOp(id(599), syncproto.OutcomeUnreachable, false)
	long.Body.Notes = strings.Repeat("劝", syncproto.MaxNotesLen)
	e := mustReject(t, w, long, env, syncproto.CodeWarningFull)
	if !strings.Contains(e.Message, fmt.Sprint(limits.MaxBytes)) || !strings.Contains(e.Message, "notes") {
		t.Fatalf("message %q: want the limit and what to do", e.Message)
	}

	full := w.Clone()
	limits.MaxBytes = encodedSize(t, full)
	escalate := escalateOp("对方情绪激动")
	escalate.At = now.Add(time.Hour) // raises a future_time flag
	mustReject(t, full, escalate, limitedEnv(cadre(cadreTwoA), limits), syncproto.CodeWarningFull)
}

// TestApply_SizeCapLeavesLeadsRoom: a warning cadres filled to MaxBytes
// can still be returned, reassigned and approved by its leads, within
// LeadRoom; past that they are refused too.
func TestApply_SizeCapLeavesLeadsRoom(t *testing.T) {
	w := withAttempts(3)
	limits := syncproto.WarningLimits{MaxBytes: encodedSize(t, w)}
	lead := limitedEnv(townActor, limits)

	mustReject(t, w, recordOp(id(599), syncproto.OutcomeDissuaded, true), limitedEnv(cadre(cadreTwoA), limits), syncproto.CodeWarningFull)
	returned := mustApply(t, w, reviewOp(syncproto.DecisionReturn, 13), lead).Warning
	mustApply(t, returned, assignOp(cadreTwoB), lead)

	long := reviewOp(syncproto.DecisionReturn, 13)
	long.Body.Comment = strings.Repeat("核", syncproto.MaxCommentLen)
	limits.MaxBytes = 4 * (encodedSize(t, w) + 100) / 5 // LeadRoom is a quarter of it
	mustReject(t, w, long, limitedEnv(townActor, limits), syncproto.CodeWarningFull)
}

// TestApply_NoLimitsByDefault: the zero Env sets no limit, as a phone
// applies its pending ops; only the server refuses.
func TestApply_NoLimitsByDefault(t *testing.T) {
	w := withAttempts(syncproto.DefaultWarningLimits.MaxAttempts)
	op := recordOp(id(599), syncproto.OutcomeUnreachable, false)
	op.Body.Notes = strings.Repeat("劝", syncproto.MaxNotesLen)
	mustApply(t, w, op, testEnv(cadre(cadreTwoA)))
	mustReject(t, w, op, limitedEnv(cadre(cadreTwoA), syncproto.DefaultWarningLimits), syncproto.CodeWarningFull)
}

// TestDecode_PushOpsLimit: a push of MaxPushOps ops decodes; one more is
// payload_too_large naming ops, in both codecs, and the byteReader
// refuses it too rather than allocate it.
func TestDecode_PushOpsLimit(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.MediaType()+"/AtLimit", func(t *testing.T) {
			data, err := c.Marshal(samplePush(syncproto.MaxPushOps))
			if err != nil {
				t.Fatal(err)
			}
			var req syncproto.PushRequest
			if err := c.Unmarshal(data, &req); err != nil || len(req.Ops) != syncproto.MaxPushOps {
				t.Fatalf("%d ops: %v", len(req.Ops), err)
			}
		})
		t.Run(c.MediaType()+"/OverLimit", func(t *testing.T) {
			data, err := c.Marshal(samplePush(syncproto.MaxPushOps + 1))
			if err != nil {
				t.Fatal(err)
			}
			var req syncproto.PushRequest
			err = c.Unmarshal(data, &req)
			if e := requireCode(t, err, syncproto.CodePayloadTooLarge); e.Details["field"] != "ops" {
				t.Fatalf("details.field = %v, want ops", e.Details["field"])
			}
			if c != syncproto.Msgpack {
				return
			}
			if handled, err := syncproto.DecodeMsgpackFast(data, &req, true); !handled || err == nil {
				t.Fatalf("the byteReader took %d ops (handled %v)", len(req.Ops), handled)
			}
		})
	}
}

// A pull's have list is refused past MaxPullLimit entries, the most a page
// may hold, before its entries are decoded: a body of empty entries would
// otherwise cost some forty bytes of memory a byte. Both decoders refuse
// it, in both encodings.
func TestDecode_PullHaveLimit(t *testing.T) {
	pull := func(n int) *syncproto.PullRequest {
		req := &syncproto.PullRequest{DeviceID: deviceID, Cursor: "c", Limit: 10}
		for range n {
			req.Have = append(req.Have, syncproto.Have{ID: warningID, Version: 1, Hash: "0123456789abcdef"})
		}
		return req
	}
	for _, c := range codecs {
		data, err := c.Marshal(pull(syncproto.MaxPullLimit))
		if err != nil {
			t.Fatal(err)
		}
		var req syncproto.PullRequest
		if err := c.Unmarshal(data, &req); err != nil || len(req.Have) != syncproto.MaxPullLimit || req.Limit != 10 || req.Cursor != "c" {
			t.Fatalf("%s: %d have entries at the limit, limit %d: %v", c.MediaType(), len(req.Have), req.Limit, err)
		}
		if data, err = c.Marshal(pull(syncproto.MaxPullLimit + 1)); err != nil {
			t.Fatal(err)
		}
		err = c.Unmarshal(data, &req)
		if e := requireCode(t, err, syncproto.CodePayloadTooLarge); e.Details["field"] != "have" {
			t.Fatalf("%s: details.field = %v, want have", c.MediaType(), e.Details["field"])
		}
		if c != syncproto.Msgpack {
			continue
		}
		var lib syncproto.PullRequest
		if err := msgpack.Unmarshal(data, &lib); err == nil {
			t.Fatalf("the library's decoder took %d have entries", len(lib.Have))
		}
	}
}
