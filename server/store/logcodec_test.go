package store_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Ids as the store holds them: canonical UUIDs, and what is not one.
const (
	codecWarning = "5f0c2a8e-9b1d-4c3e-8f7a-2d6b9e1c4a70"
	codecUser    = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	codecDevice  = "ffffffff-0000-4000-8000-000000000001"
	codecOp      = "11111111-2222-4333-8444-555555555555"
	codecAttempt = "9e8d7c6b-5a49-4837-a625-140f0e0d0c0b"
	codecLead    = "22222222-3333-4444-8555-666666666666"
	codecPhoto   = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
)

func codecTime(sec, nsec int64) time.Time { return time.Unix(sec, nsec).UTC() }

func boolPtr(v bool) *bool { return &v }

// codecPushEntry is a pushed op as applyOp logs it, with its result.
func codecPushEntry(seq uint64, op syncproto.Op, res syncproto.Result) *store.LogEntry {
	return &store.LogEntry{Seq: seq, Type: op.Type, EntityID: op.WarningID, ActorID: codecUser, DeviceID: codecDevice,
		ReceivedAt: codecTime(1_765_000_000, 123_456_789), Op: &op, Result: &res}
}

func codecOpOf(typ string, clientSeq uint64, body syncproto.OpBody) syncproto.Op {
	return syncproto.Op{ID: codecOp, ClientSeq: clientSeq, Type: typ, WarningID: codecWarning, BaseVersion: 4711,
		At: codecTime(1_764_999_000, 5_000_000), Body: body}
}

func applied(clientSeq, version uint64) syncproto.Result {
	return syncproto.Result{OpID: codecOp, ClientSeq: clientSeq, Status: syncproto.StatusApplied, Version: version}
}

// codecEntries are log entries of every kind the store writes, and some it
// does not but must still keep exactly.
func codecEntries() map[string]*store.LogEntry {
	recorded := syncproto.OpBody{AttemptID: codecAttempt, Method: syncproto.MethodVisit, Reached: boolPtr(true),
		Outcome: syncproto.OutcomeDissuaded, LossFen: 120_000, Notes: "本人已知晓，已劝阻转账。",
		Location: &syncproto.Location{Lat: 34.0315, Lng: 113.8523, Accuracy: 15}, Photos: []string{codecPhoto, strings.Repeat("ab", 32)}}
	bare := syncproto.OpBody{AttemptID: codecAttempt, Method: syncproto.MethodPhone, Reached: boolPtr(false), Outcome: syncproto.OutcomeUnreachable}
	rejected := syncproto.Result{OpID: codecOp, ClientSeq: 8, Status: syncproto.StatusRejected, Code: syncproto.CodeForbidden,
		Message: "this warning is not in your scope"}
	flagged := applied(9, 90_001)
	flagged.Flags = []syncproto.Flag{{Code: syncproto.FlagConflictingOutcomes, OpID: codecLead, Detail: "dissuaded vs refused"},
		{Code: syncproto.FlagFutureTime, OpID: "not-a-uuid", Resolved: true}}
	deadline := codecTime(1_765_086_400, 0)
	feed := &syncproto.FeedWarning{ExternalID: "GA-2026-000123", Name: "张三", Phone: "13800138000", IDTail: "1234",
		Address: "许昌市魏都区某街道1号", Unit: "411002001001", FraudType: "刷单返利", Risk: syncproto.RiskHigh,
		WarnedAt: codecTime(1_764_990_000, 0), Deadline: &deadline}
	noDeadline := *feed
	noDeadline.Deadline = nil
	// An op whose type and warning differ from the entry's, and a result
	// whose op_id and client_seq differ from the op's: never written, but
	// kept exactly if they were.
	odd := codecPushEntry(90_010, codecOpOf(syncproto.OpReviewed, 10, syncproto.OpBody{Decision: syncproto.DecisionApprove}), applied(11, 7))
	odd.Type, odd.EntityID = syncproto.OpRecorded, "411002"
	odd.Result.OpID = "OP-1"
	return map[string]*store.LogEntry{
		"Recorded":         codecPushEntry(90_000, codecOpOf(syncproto.OpRecorded, 7, recorded), applied(7, 90_000)),
		"RecordedBare":     codecPushEntry(90_002, codecOpOf(syncproto.OpRecorded, 7, bare), applied(7, 90_002)),
		"RecordedRejected": codecPushEntry(90_003, codecOpOf(syncproto.OpRecorded, 8, bare), rejected),
		"RecordedFlagged":  codecPushEntry(90_004, codecOpOf(syncproto.OpRecorded, 9, recorded), flagged),
		"Dispatched":       codecPushEntry(3, codecOpOf(syncproto.OpDispatched, 1, syncproto.OpBody{Unit: "411002001"}), applied(1, 3)),
		"Assigned":         codecPushEntry(300, codecOpOf(syncproto.OpAssigned, 2, syncproto.OpBody{Assignee: codecUser}), applied(2, 300)),
		"Escalated":        codecPushEntry(70_000, codecOpOf(syncproto.OpEscalated, 3, syncproto.OpBody{Reason: "对方拒不配合"}), applied(3, 70_000)),
		"Reviewed": codecPushEntry(1<<33, codecOpOf(syncproto.OpReviewed, 1<<40,
			syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "请补充照片"}), applied(1<<40, 1<<33)),
		"Answered": codecPushEntry(5, codecOpOf(syncproto.OpAnswered, 4, syncproto.OpBody{Answer: "已联系派出所"}), applied(4, 5)),
		"Odd":      odd,
		"Feed": {Seq: 17, Type: syncproto.OpCreated, EntityID: codecWarning, ActorID: codecUser, DeviceID: codecDevice,
			ReceivedAt: codecTime(1_765_000_000, 1), Feed: feed},
		"FeedNoDeadline": {Seq: 18, Type: syncproto.OpCreated, EntityID: codecWarning, ActorID: codecUser,
			ReceivedAt: codecTime(1_765_000_000, 0), Feed: &noDeadline},
		"Unit": {Seq: 1, Type: store.EntryUnit, EntityID: "411002001001", ActorID: codecUser, DeviceID: codecDevice,
			ReceivedAt: codecTime(1_700_000_000, 0)},
		"User": {Seq: 2, Type: store.EntryUser, EntityID: codecLead, ActorID: codecUser, DeviceID: codecDevice,
			ReceivedAt: codecTime(1_700_000_000, 999_999_999)},
		"Photo": {Seq: 90_005, Type: store.EntryPhoto, EntityID: codecWarning, ActorID: codecUser, DeviceID: codecDevice,
			ReceivedAt: codecTime(1_765_000_100, 0)},
		"Archived": {Seq: 90_006, Type: store.EntryArchived, EntityID: codecWarning, ActorID: "system", ReceivedAt: codecTime(1_765_000_200, 0)},
		"Empty":    {},
	}
}

// codecResults are push results as the results bucket holds them, each
// with the client_seq of its key.
func codecResults() map[string]struct {
	res       syncproto.Result
	clientSeq uint64
} {
	type keyed = struct {
		res       syncproto.Result
		clientSeq uint64
	}
	flagged := applied(12, 1234)
	flagged.Flags = []syncproto.Flag{{Code: syncproto.FlagStaleAssignee, OpID: codecOp, Detail: "assignee changed"}}
	return map[string]keyed{
		"Applied":  {applied(12, 90_000), 12},
		"Rejected": {syncproto.Result{OpID: codecOp, ClientSeq: 300, Status: syncproto.StatusRejected, Code: syncproto.CodeInvalidState, Message: "the warning is closed"}, 300},
		"Flagged":  {flagged, 12},
		"OtherKey": {applied(12, 5), 13},
		"NotUUID":  {syncproto.Result{OpID: "op-7", ClientSeq: 1, Status: syncproto.StatusApplied}, 1},
		"Empty":    {syncproto.Result{}, 0},
	}
}

func TestLogCodec_EntryRoundTrip(t *testing.T) {
	for name, e := range codecEntries() {
		t.Run(name, func(t *testing.T) {
			data := store.EncodeLogEntry(e)
			if data[0] != 0xc1 {
				t.Fatalf("compact value starts with 0x%02x", data[0])
			}
			var got store.LogEntry
			if err := store.DecodeLogEntry(data, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, &got); diff != "" {
				t.Fatalf("decoded entry differs (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestLogCodec_OldEntries: the MessagePack maps stores hold from before the
// compact form decode as they always did, to what the compact form gives.
func TestLogCodec_OldEntries(t *testing.T) {
	for name, e := range codecEntries() {
		t.Run(name, func(t *testing.T) {
			old, err := syncproto.MarshalMsgpack(e)
			if err != nil {
				t.Fatal(err)
			}
			var got store.LogEntry
			if err := store.DecodeLogEntry(old, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, &got); diff != "" {
				t.Fatalf("old entry decodes differently (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

func TestLogCodec_ResultRoundTrip(t *testing.T) {
	for name, k := range codecResults() {
		t.Run(name, func(t *testing.T) {
			data := store.EncodeResult(&k.res, k.clientSeq)
			var got syncproto.Result
			if err := store.DecodeResult(data, k.clientSeq, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(k.res, got); diff != "" {
				t.Fatalf("decoded result differs (-encoded +decoded):\n%s", diff)
			}
			old, err := syncproto.MarshalMsgpack(&k.res)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.DecodeResult(old, k.clientSeq, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(k.res, got); diff != "" {
				t.Fatalf("old result decodes differently (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestLogCodec_Compact: the compact form is what it is for: ids as bytes,
// the commonest strings as words, no field the entry holds twice. A
// typical pushed op's entry is about half its MessagePack map.
func TestLogCodec_Compact(t *testing.T) {
	e := codecEntries()["Recorded"]
	data := store.EncodeLogEntry(e)
	old, err := syncproto.MarshalMsgpack(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > len(old)*6/10 {
		t.Errorf("compact entry %d B, MessagePack map %d B", len(data), len(old))
	}
	for _, id := range []string{codecWarning, codecUser, codecOp, codecPhoto, syncproto.OpRecorded + "\xa7" + syncproto.StatusApplied} {
		if bytes.Contains(data, []byte(id)) {
			t.Errorf("compact entry holds %q as text", id)
		}
	}
	// The type, the method, the outcome and the result's status are words
	// (schema 18): a byte each, not their text.
	for _, word := range []string{syncproto.OpRecorded, syncproto.MethodVisit, syncproto.OutcomeDissuaded, syncproto.StatusApplied} {
		if bytes.Contains(data, []byte(word)) {
			t.Errorf("compact entry holds %q as text", word)
		}
	}
}

// TestLogCodec_Corrupt: a compact value this code did not write is an
// error, not a guess.
func TestLogCodec_Corrupt(t *testing.T) {
	good := store.EncodeLogEntry(codecEntries()["Recorded"])
	for name, data := range map[string][]byte{
		"Truncated":   good[:len(good)-1],
		"Trailing":    append(bytes.Clone(good), 0xc0),
		"TagOnly":     {0xc1},
		"TooMany":     {0xc1, 0x9a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		"ShortID":     {0xc1, 0x93, 1, 0xa0, 0xc4, 2, 0xab, 0xcd},
		"BadTime":     {0xc1, 0x96, 1, 0xa0, 0xa0, 0xa0, 0xa0, 0xd6, 0x00, 0, 0, 0, 0},
		"ArrayLength": {0xc1, 0x99, 1, 0xa0, 0xa0, 0xa0, 0xa0, 0xc0, 0xdd, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			var e store.LogEntry
			if err := store.DecodeLogEntry(data, &e); err == nil {
				t.Fatalf("decoded %x to %+v", data, e)
			}
		})
	}
}

// FuzzDecodeLog feeds the decoders of the log and the results anything:
// they must not panic, and what they decode from a compact value encodes
// again to a value that decodes the same.
func FuzzDecodeLog(f *testing.F) {
	for _, e := range codecEntries() {
		f.Add(store.EncodeLogEntry(e), uint64(7))
		if old, err := syncproto.MarshalMsgpack(e); err == nil {
			f.Add(old, uint64(7))
		}
	}
	for _, k := range codecResults() {
		f.Add(store.EncodeResult(&k.res, k.clientSeq), k.clientSeq)
	}
	same := cmpopts.EquateNaNs()
	f.Fuzz(func(t *testing.T, data []byte, clientSeq uint64) {
		var e store.LogEntry
		if err := store.DecodeLogEntry(data, &e); err == nil && len(data) > 0 && data[0] == 0xc1 {
			var again store.LogEntry
			if err := store.DecodeLogEntry(store.EncodeLogEntry(&e), &again); err != nil {
				t.Fatalf("re-encoded entry: %v", err)
			}
			if diff := cmp.Diff(&e, &again, same); diff != "" {
				t.Fatalf("re-encoded entry differs:\n%s", diff)
			}
		}
		var r syncproto.Result
		if err := store.DecodeResult(data, clientSeq, &r); err == nil && len(data) > 0 && data[0] == 0xc1 {
			var again syncproto.Result
			if err := store.DecodeResult(store.EncodeResult(&r, clientSeq), clientSeq, &again); err != nil {
				t.Fatalf("re-encoded result: %v", err)
			}
			if diff := cmp.Diff(r, again, same); diff != "" {
				t.Fatalf("re-encoded result differs:\n%s", diff)
			}
		}
	})
}

// BenchmarkLogCodec times encoding and decoding the log entry and the
// result of a typical pushed op (a cadre's dissuasion.recorded, as the
// load program sends it) in the older MessagePack maps and in the compact
// form the store writes, and reports each value's size (value-B).
func BenchmarkLogCodec(b *testing.B) {
	op := codecOpOf(syncproto.OpRecorded, 1_234, syncproto.OpBody{AttemptID: codecAttempt, Method: syncproto.MethodVisit,
		Reached: boolPtr(true), Outcome: syncproto.OutcomeDissuaded,
		Notes:    "电话联系本人，已告知刷单返利均为诈骗，本人表示理解并卸载了相关APP。",
		Location: &syncproto.Location{Lat: 34.0315, Lng: 113.8523, Accuracy: 15}})
	e := codecPushEntry(215_311, op, applied(op.ClientSeq, 215_311))
	type form struct {
		name   string
		encode func() ([]byte, error)
		decode func([]byte) error
	}
	for _, f := range []form{
		{"Entry/MessagePack", func() ([]byte, error) { return syncproto.MarshalMsgpack(e) },
			func(d []byte) error { var e store.LogEntry; return store.DecodeLogEntry(d, &e) }},
		{"Entry/Compact", func() ([]byte, error) { return store.EncodeLogEntry(e), nil },
			func(d []byte) error { var e store.LogEntry; return store.DecodeLogEntry(d, &e) }},
		{"Result/MessagePack", func() ([]byte, error) { return syncproto.MarshalMsgpack(e.Result) },
			func(d []byte) error { var r syncproto.Result; return store.DecodeResult(d, op.ClientSeq, &r) }},
		{"Result/Compact", func() ([]byte, error) { return store.EncodeResult(e.Result, op.ClientSeq), nil },
			func(d []byte) error { var r syncproto.Result; return store.DecodeResult(d, op.ClientSeq, &r) }},
	} {
		benchCodec(b, f.name, f.encode, f.decode)
	}
}

// benchCodec times encode and decode of the value encode makes, as
// name/Encode and name/Decode, and reports the value's size (value-B).
func benchCodec(b *testing.B, name string, encode func() ([]byte, error), decode func([]byte) error) {
	data, err := encode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run(name+"/Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encode(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data)), "value-B")
	})
	b.Run(name+"/Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := decode(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data)), "value-B")
	})
}
