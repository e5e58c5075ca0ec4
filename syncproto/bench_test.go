package syncproto_test

import (
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkApply records an attempt on a warning that already holds three:
// the commonest op on the push path.
func BenchmarkApply(b *testing.B) {
	w := realisticWarning()
	op := recordOp(id(599), syncproto.OutcomeDissuaded, true)
	env := testEnv(cadre(cadreTwoA))
	b.ReportAllocs()
	for b.Loop() {
		res, err := syncproto.Apply(w, op, env)
		if err != nil || !res.Changed {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate makes a warning from a feed row at a village with one
// cadre, so it is dispatched and assigned at once.
func BenchmarkCreate(b *testing.B) {
	f := &syncproto.FeedWarning{
		ExternalID: "GJFZ-20240501-000777", Name: "陈桂英", Phone: "13900139000", IDTail: "0021",
		Address: "许昌市魏都区东风社区8号院", Unit: villageOne, FraudType: "虚假投资理财",
		Risk: syncproto.RiskHigh, WarnedAt: warnedAt,
	}
	env := testEnv(centerActor)
	b.ReportAllocs()
	for b.Loop() {
		if w := syncproto.Create(warningID, f, env, syncproto.DefaultDeadlines); w.Assignee != cadreOne {
			b.Fatal("not assigned")
		}
	}
}

// BenchmarkCodec encodes and decodes a 20-op push and a 500-change pull
// (a full default page) in both encodings. SetBytes makes MB/s the body
// size per second.
func BenchmarkCodec(b *testing.B) {
	for _, body := range []struct {
		name string
		v    any
	}{
		{"Push20", samplePush(20)},
		{"Pull500", samplePull(500)},
	} {
		for _, c := range codecs {
			data, err := c.Marshal(body.v)
			if err != nil {
				b.Fatal(err)
			}
			typ := reflect.TypeOf(body.v).Elem()
			b.Run(body.name+"/"+c.MediaType()+"/Marshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := c.Marshal(body.v); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(body.name+"/"+c.MediaType()+"/Unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if err := c.Unmarshal(data, reflect.New(typ).Interface()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
