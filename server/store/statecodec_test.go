package store_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

func timePtr(t time.Time) *time.Time { return &t }

// codecStateOf is a warning's state as the load program leaves most of
// them: received from the feed, dispatched to a township, assigned to a
// cadre who reached the person, resolved, and approved by the lead.
func codecStateOf() syncproto.Warning {
	return syncproto.Warning{ID: codecWarning, ExternalID: "GA20251206-000123", Name: "张三", Phone: "13800001234",
		IDTail: "1234", Address: "许昌市魏都区丁庄街道某小区3号楼", Unit: "411002001001", FraudType: "刷单返利", Risk: syncproto.RiskHigh,
		WarnedAt: codecTime(1_764_990_000, 0), ReceivedAt: codecTime(1_764_990_100, 123_456_789), Deadline: codecTime(1_765_076_400, 0),
		DispatchedAt: timePtr(codecTime(1_764_991_000, 1_000)), AssignedAt: timePtr(codecTime(1_764_992_000, 0)),
		Status: syncproto.WarningResolved, Assignee: codecUser, Outcome: syncproto.OutcomeDissuaded,
		FirstContactAt: timePtr(codecTime(1_764_999_000, 5_000_000)), ResolvedAt: timePtr(codecTime(1_764_999_000, 5_000_000)),
		Reviews: []syncproto.Review{{By: codecLead, Decision: syncproto.DecisionApprove, At: codecTime(1_765_003_000, 0), ByName: "李四"}},
		Flags:   []syncproto.Flag{}, Version: 215_311}
}

// codecStates are states of every shape the store writes, and some it
// does not but must still keep exactly.
func codecStates() map[string]syncproto.Warning {
	typical := codecStateOf()
	fresh := syncproto.Warning{ID: codecWarning, ExternalID: "GA20251206-000124", Name: "王五", Phone: "13900005678", IDTail: "5678",
		Address: "许昌市建安区", Unit: "411000", FraudType: "冒充客服", Risk: syncproto.RiskMedium,
		WarnedAt: codecTime(1_764_990_000, 0), ReceivedAt: codecTime(1_764_990_100, 0), Deadline: codecTime(1_765_076_400, 0),
		Status: syncproto.WarningNew, Reviews: []syncproto.Review{}, Flags: []syncproto.Flag{}, Version: 3}
	dispatched := fresh
	dispatched.Unit, dispatched.Status, dispatched.Version = "411002001", syncproto.WarningDispatched, 9
	dispatched.DispatchedAt = timePtr(codecTime(1_764_991_000, 0))
	assigned := dispatched
	assigned.Unit, assigned.Status, assigned.Version = "411002001001", syncproto.WarningAssigned, 12
	assigned.Assignee, assigned.AssignedAt = codecUser, timePtr(codecTime(1_764_992_000, 0))
	// Returned twice, reassigned, flagged, and helped: every list full.
	busy := typical
	busy.Status, busy.Outcome, busy.ResolvedAt = syncproto.WarningInProgress, "", nil
	busy.Reviews = []syncproto.Review{
		{By: codecLead, Decision: syncproto.DecisionReturn, Comment: "请补充现场照片", At: codecTime(1_765_001_000, 0), ByName: "李四"},
		{By: codecLead, Decision: syncproto.DecisionReturn, Comment: "联系不到本人，请再次上门", At: codecTime(1_765_002_000, 0)},
	}
	busy.Flags = []syncproto.Flag{{Code: syncproto.FlagStaleAssignee, OpID: codecOp, Detail: "assigned to another cadre"},
		{Code: syncproto.FlagFutureTime, OpID: codecOp, Resolved: true}}
	busy.PastAssignees = []string{codecLead, "00000000-0000-4000-8000-0000000000a1"}
	busy.Escalated = true
	busy.Escalations = []syncproto.Escalation{
		{By: codecUser, ByName: "赵六", Reason: "本人拒绝沟通", At: codecTime(1_765_001_500, 0), OpID: codecOp,
			Answer: "请联系派出所协助", AnsweredBy: codecLead, AnsweredByName: "县反诈中心", AnsweredAt: timePtr(codecTime(1_765_001_900, 7))},
		{By: codecUser, Reason: "再次求助", At: codecTime(1_765_002_500, 0), OpID: "op-2"},
	}
	closed := typical
	closed.Status, closed.ClosedAt = syncproto.WarningClosed, timePtr(codecTime(1_765_004_000, 0))
	// Archived and then redacted: its personal data gone.
	redacted := closed
	redacted.Name, redacted.Phone, redacted.IDTail, redacted.Address = "", "", "", ""
	redacted.ArchivedAt, redacted.RedactedAt = timePtr(codecTime(1_767_000_000, 0)), timePtr(codecTime(1_790_000_000, 0))
	// Optional times present but zero, and required ones zero: never
	// written, but kept if they were.
	zeroTimes := busy
	zeroTimes.WarnedAt, zeroTimes.Deadline = time.Time{}, time.Time{}
	zeroTimes.DispatchedAt, zeroTimes.ArchivedAt = timePtr(time.Time{}), timePtr(time.Time{})
	zeroTimes.Escalations = []syncproto.Escalation{{AnsweredAt: timePtr(time.Time{})}, {}}
	zeroTimes.Reviews = []syncproto.Review{{}}
	zeroTimes.Flags = []syncproto.Flag{{}}
	// Ids that are not canonical UUIDs (an older client's, an uppercase
	// one, the system's), a time before 1970, long lists.
	odd := busy
	odd.ID, odd.Assignee = "warning-7", strings.ToUpper(codecUser)
	odd.Reviews = append([]syncproto.Review(nil), odd.Reviews...)
	odd.Reviews[0].By = "system"
	odd.Flags = []syncproto.Flag{{Code: syncproto.FlagAfterClose, OpID: "op-1"}}
	odd.Escalations = []syncproto.Escalation{{By: "user-9", OpID: strings.ToUpper(codecOp), AnsweredBy: "center"}}
	odd.WarnedAt = codecTime(-86_400, 1)
	for i := range 20 {
		odd.PastAssignees = append(odd.PastAssignees, strings.Repeat(string(rune('a'+i)), 8)+codecUser[8:])
		odd.Flags = append(odd.Flags, syncproto.Flag{Code: syncproto.FlagConflictingOutcomes, OpID: codecOp})
	}
	noLists := fresh
	noLists.Reviews, noLists.Flags = nil, nil
	return map[string]syncproto.Warning{
		"New":        fresh,
		"Dispatched": dispatched,
		"Assigned":   assigned,
		"Typical":    typical,
		"Busy":       busy,
		"Closed":     closed,
		"Redacted":   redacted,
		"ZeroTimes":  zeroTimes,
		"Odd":        odd,
		"NoLists":    noLists,
		"Empty":      {},
	}
}

func TestStateCodec_RoundTrip(t *testing.T) {
	for name, w := range codecStates() {
		t.Run(name, func(t *testing.T) {
			data := store.EncodeState(&w)
			if data[0] != 0xc1 {
				t.Fatalf("compact state starts with 0x%02x", data[0])
			}
			var got syncproto.Warning
			if err := store.DecodeState(data, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Fatalf("decoded state differs (-encoded +decoded):\n%s", diff)
			}
			if !bytes.Equal(store.EncodeState(&got), data) {
				t.Fatal("the decoded state encodes to other bytes")
			}
		})
	}
}

// TestStateCodec_OldForm: the MessagePack maps stores hold from before
// the compact form decode as they always did, to what the compact form
// gives.
func TestStateCodec_OldForm(t *testing.T) {
	for name, w := range codecStates() {
		t.Run(name, func(t *testing.T) {
			old, err := syncproto.MarshalMsgpack(&w)
			if err != nil {
				t.Fatal(err)
			}
			if old[0] == 0xc1 {
				t.Fatal("the older form starts with the compact tag")
			}
			var got syncproto.Warning
			if err := store.DecodeState(old, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Fatalf("old state decodes differently (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestStateCodec_LeftOut: what a state never holds is not written (its
// attempts are records of their own, missing photos and the summary mark
// only copies sent carry), and empty escalations and past assignees read
// back as none, as the older form gives them.
func TestStateCodec_LeftOut(t *testing.T) {
	w := codecStateOf()
	want := store.EncodeState(&w)
	full := w
	full.Attempts = []syncproto.Attempt{codecAttemptOf()}
	full.MissingPhotos, full.Summary = []string{codecPhoto}, true
	full.Escalations, full.PastAssignees = []syncproto.Escalation{}, []string{}
	if got := store.EncodeState(&full); !bytes.Equal(got, want) {
		t.Fatalf("a state with attempts, missing photos, a summary mark and empty lists encodes to %x, want %x", got, want)
	}
	if len(w.Attempts) != 0 || full.Attempts == nil {
		t.Fatal("encoding changed its warning")
	}
}

// TestStateCodec_Compact: the compact form is what it is for: ids as
// bytes, no keys, the fields a young warning lacks left out; and the text
// a list filters on still plain in the bytes (listItem).
func TestStateCodec_Compact(t *testing.T) {
	states := codecStates()
	for _, name := range []string{"Typical", "Busy"} {
		w := states[name]
		data := store.EncodeState(&w)
		old, err := syncproto.MarshalMsgpack(&w)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > len(old)*6/10 {
			t.Errorf("%s: compact state %d B, MessagePack map %d B", name, len(data), len(old))
		}
		for _, s := range []string{codecWarning, codecUser, codecLead, codecOp, "external_id", "dispatched_at", "approve\xa7comment"} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s: compact state holds %q as text", name, s)
			}
		}
		for _, s := range []string{w.Name, w.Phone, w.Address, w.Phone[7:], "魏都区"} {
			if !bytes.Contains(data, []byte(s)) {
				t.Errorf("%s: compact state lacks %q as plain text", name, s)
			}
		}
	}
	// A new warning writes nothing past its version and its empty
	// reviews and flags.
	fresh := states["New"]
	dispatched := fresh
	dispatched.DispatchedAt = timePtr(codecTime(1_764_991_000, 0))
	if n, m := len(store.EncodeState(&fresh)), len(store.EncodeState(&dispatched)); m-n != 1+6 {
		t.Errorf("a dispatch time adds %d B to a new warning, want the time's 6 and the nil of escalated", m-n)
	}
}

// TestStateCodec_Deterministic: the same state is the same bytes however
// it was made, as the nodes of a cluster compare their stores' digests.
func TestStateCodec_Deterministic(t *testing.T) {
	for name, w := range codecStates() {
		if w.Reviews == nil || w.Flags == nil {
			continue // a clone's are empty lists, which a state keeps apart from none
		}
		a := store.EncodeState(&w)
		c := w.Clone()
		c.Attempts = nil
		if !bytes.Equal(store.EncodeState(c), a) {
			t.Errorf("%s: a clone encodes to other bytes", name)
		}
	}
}

// TestStateCodec_Corrupt: a compact value this code did not write is an
// error, not a guess.
func TestStateCodec_Corrupt(t *testing.T) {
	w := codecStates()["Busy"]
	good := store.EncodeState(&w)
	// nils is a compact state of the array header, n nil fields, and rest.
	nils := func(header []byte, n int, rest ...byte) []byte {
		return append(append(append([]byte{0xc1}, header...), bytes.Repeat([]byte{0xc0}, n)...), rest...)
	}
	for name, data := range map[string][]byte{
		"Truncated":   good[:len(good)-1],
		"Trailing":    append(bytes.Clone(good), 0xc0),
		"TagOnly":     {0xc1},
		"TooMany":     nils([]byte{0xdc, 0, 29}, 29),
		"ShortID":     {0xc1, 0x91, 0xc4, 2, 0xab, 0xcd},
		"NotAString":  nils([]byte{0x92}, 1, 0x01),
		"NotAUint":    nils([]byte{0x9e}, 13, 0xa0),
		"BadTime":     nils([]byte{0x9a}, 9, 0xd6, 0x00, 0, 0, 0, 0),
		"Reviews":     nils([]byte{0x9f}, 14, 0xdd, 0xff, 0xff, 0xff, 0xff),
		"LongReview":  nils([]byte{0x9f}, 14, 0x91, 0x96, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0),
		"ReviewIsNil": nils([]byte{0x9f}, 14, 0x91, 0xc0),
		"BadAnswerAt": nils([]byte{0xdc, 0, 26}, 25, 0x91, 0x99, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xa0),
		"FlagIsBool":  nils([]byte{0xdc, 0, 16}, 15, 0x91, 0xc3),
		"OldBroken":   {0x81, 0xa2, 'i', 'd'},
	} {
		t.Run(name, func(t *testing.T) {
			var got syncproto.Warning
			if err := store.DecodeState(data, &got); err == nil {
				t.Fatalf("decoded %x to %+v", data, got)
			}
		})
	}
}

// FuzzDecodeState feeds the state decoder anything: it must not panic,
// and what it decodes from a compact value encodes again to a value that
// decodes the same.
func FuzzDecodeState(f *testing.F) {
	for _, w := range codecStates() {
		f.Add(store.EncodeState(&w))
		if old, err := syncproto.MarshalMsgpack(&w); err == nil {
			f.Add(old)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var w syncproto.Warning
		if err := store.DecodeState(data, &w); err != nil || len(data) == 0 || data[0] != 0xc1 {
			return
		}
		var again syncproto.Warning
		if err := store.DecodeState(store.EncodeState(&w), &again); err != nil {
			t.Fatalf("re-encoded state: %v", err)
		}
		if diff := cmp.Diff(w, again); diff != "" {
			t.Fatalf("re-encoded state differs:\n%s", diff)
		}
	})
}

// BenchmarkStateCodec times encoding and decoding a typical state (a
// warning dispatched, assigned, resolved on the cadre's visit and
// approved, as the load program leaves most) in the older MessagePack map
// and in the compact form the store writes, and reports the value's size
// (value-B).
func BenchmarkStateCodec(b *testing.B) {
	w := codecStateOf()
	decode := func(d []byte) error { var w syncproto.Warning; return store.DecodeState(d, &w) }
	benchCodec(b, "MessagePack", func() ([]byte, error) { return syncproto.MarshalMsgpack(&w) }, decode)
	benchCodec(b, "Compact", func() ([]byte, error) { return store.EncodeState(&w), nil }, decode)
}
