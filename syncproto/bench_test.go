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

// cadrePullPage is the page a village cadre's phone pulls after a round of
// work: n warnings put, each with two attempts (one with a location).
func cadrePullPage(n int) *syncproto.PullResponse {
	resp := &syncproto.PullResponse{Changes: make([]syncproto.Change, n), Cursor: syncproto.Cursor{Seq: 4000}.Encode(), LastClientSeq: 20}
	for i := range resp.Changes {
		w := realisticWarning()
		w.Attempts = w.Attempts[1:]
		w.ID, w.Version = id(30000+i), uint64(1000+i)
		resp.Changes[i] = syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityWarning, ID: w.ID, Version: w.Version, Data: w}
	}
	return resp
}

// BenchmarkDecodePullPage decodes, as the SDK does, the MessagePack page
// of 20 warnings a cadre's phone pulls after each push in the load
// program.
func BenchmarkDecodePullPage(b *testing.B) {
	data, err := syncproto.Msgpack.Marshal(cadrePullPage(20))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var resp syncproto.PullResponse
		if err := syncproto.Msgpack.Unmarshal(data, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalWarning decodes a stored warning state, as the
// server's store does for every op it applies and the SDK for every
// warning it reads.
func BenchmarkUnmarshalWarning(b *testing.B) {
	data, err := syncproto.MarshalMsgpack(realisticWarning())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var w syncproto.Warning
		if err := syncproto.UnmarshalMsgpack(data, &w); err != nil {
			b.Fatal(err)
		}
	}
}
