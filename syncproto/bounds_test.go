package syncproto_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestOp_Validate_NumberBounds: every number an op carries is bounded, so
// the sums the server keeps of them cannot wrap. A loss of 2^62 fen on two
// warnings once turned a township's total into about -9.2e18.
func TestOp_Validate_NumberBounds(t *testing.T) {
	record := func(edit func(*syncproto.OpBody)) *syncproto.Op {
		op := validOps()[syncproto.OpRecorded]
		edit(&op.Body)
		return op
	}
	t.Run("LossAtTheBound", func(t *testing.T) {
		if err := record(func(b *syncproto.OpBody) { b.LossFen = syncproto.MaxLossFen }).Validate(); err != nil {
			t.Fatalf("a loss of %d fen: %v", int64(syncproto.MaxLossFen), err)
		}
	})
	for name, loss := range map[string]int64{
		"LossJustOver":    syncproto.MaxLossFen + 1,
		"LossTwoTo62":     1 << 62,
		"LossMaxInt64":    math.MaxInt64,
		"LossHundredfold": 100 * syncproto.MaxLossFen,
	} {
		t.Run(name, func(t *testing.T) {
			err := record(func(b *syncproto.OpBody) { b.LossFen = loss }).Validate()
			requireField(t, err, "body.loss_fen")
			if !strings.Contains(err.Message, "1000000000000") {
				t.Errorf("message %q does not give the bound", err.Message)
			}
		})
	}
	t.Run("AccuracyAtTheBound", func(t *testing.T) {
		op := record(func(b *syncproto.OpBody) { b.Location.Accuracy = syncproto.MaxLocationAccuracy })
		if err := op.Validate(); err != nil {
			t.Fatalf("accuracy %d m: %v", syncproto.MaxLocationAccuracy, err)
		}
	})
	for name, acc := range map[string]float64{
		"AccuracyNegative": -1,
		"AccuracyOver":     syncproto.MaxLocationAccuracy + 1,
		"AccuracyHuge":     math.MaxFloat64,
	} {
		t.Run(name, func(t *testing.T) {
			err := record(func(b *syncproto.OpBody) { b.Location.Accuracy = acc }).Validate()
			requireField(t, err, "body.location")
			if !strings.Contains(err.Message, "accuracy") {
				t.Errorf("message %q does not name the accuracy", err.Message)
			}
		})
	}
}

// TestValidationMessages: a message says what is wrong with the value,
// not only what a right one looks like: a date before 2000 is not "in the
// future", a value too long is not "missing".
func TestValidationMessages(t *testing.T) {
	feed := func(edit func(*syncproto.FeedWarning)) *syncproto.Error {
		f := &syncproto.FeedWarning{ExternalID: "E1", Name: "张三", Phone: "13800001234", Unit: villageOne,
			FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: now.Add(-time.Hour)}
		edit(f)
		return f.Validate(now)
	}
	op := func(typ string, edit func(*syncproto.Op)) *syncproto.Error {
		o := validOps()[typ]
		edit(o)
		return o.Validate()
	}
	for _, tc := range []struct {
		name    string
		err     *syncproto.Error
		field   string
		want    string
		notWant string
	}{
		{"WarnedAt1999", feed(func(f *syncproto.FeedWarning) { f.WarnedAt = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }),
			"warned_at", "before 2000-01-01", "in the past"},
		{"WarnedAtMissing", feed(func(f *syncproto.FeedWarning) { f.WarnedAt = time.Time{} }), "warned_at", "required", "in the past"},
		{"WarnedAtFuture", feed(func(f *syncproto.FeedWarning) { f.WarnedAt = now.Add(time.Hour) }), "warned_at", "in the future", ""},
		{"ExternalIDTooLong", feed(func(f *syncproto.FeedWarning) { f.ExternalID = strings.Repeat("x", 129) }), "external_id", "longer than 128", "required"},
		{"ExternalIDMissing", feed(func(f *syncproto.FeedWarning) { f.ExternalID = "" }), "external_id", "required", "longer"},
		{"NameTooLong", feed(func(f *syncproto.FeedWarning) { f.Name = strings.Repeat("张", 101) }), "name", "longer than 100", "required"},
		{"FraudTypeTooLong", feed(func(f *syncproto.FeedWarning) { f.FraudType = strings.Repeat("骗", 51) }), "fraud_type", "longer than 50", "required"},
		{"At1999", op(syncproto.OpEscalated, func(o *syncproto.Op) { o.At = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }), "at", "before 2000-01-01", ""},
		{"AtYear10000", op(syncproto.OpEscalated, func(o *syncproto.Op) { o.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "at", "after the year 9999", "after 2000"},
		{"ReasonTooLong", op(syncproto.OpEscalated, func(o *syncproto.Op) { o.Body.Reason += "急" }), "body.reason", "longer than", "required"},
		{"ReasonMissing", op(syncproto.OpEscalated, func(o *syncproto.Op) { o.Body.Reason = "" }), "body.reason", "required", "longer"},
		{"LatOutOfRange", op(syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lat = 91 }), "body.location", "lat 91", ""},
		{"LngOutOfRange", op(syncproto.OpRecorded, func(o *syncproto.Op) { o.Body.Location.Lng = -181 }), "body.location", "lng -181", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireField(t, tc.err, tc.field)
			if !strings.Contains(tc.err.Message, tc.want) {
				t.Errorf("message %q does not say %q", tc.err.Message, tc.want)
			}
			if tc.notWant != "" && strings.Contains(tc.err.Message, tc.notWant) {
				t.Errorf("message %q says %q, which is not what is wrong", tc.err.Message, tc.notWant)
			}
		})
	}
}
