package syncproto_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// addSeeds adds each value in both encodings, and a few bodies every decoder
// must refuse, to f's corpus.
func addSeeds(f *testing.F, values ...any) {
	f.Helper()
	for _, v := range values {
		for _, c := range codecs {
			data, err := c.Marshal(v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	for _, b := range []string{"", "{", "[]", "null", `{"ops":[{"at":"x"}]}`, "\x91\x91\x91", "\xdd\xff\xff\xff\xff", "\xc1", "\x81\xa3ops\xc0"} {
		f.Add([]byte(b))
	}
	// Layouts where the byteReader and the library could part: a map
	// behind an ext header, a struct as an array, a bin for a string,
	// and what a skipped value may hide (a str that is not UTF-8, deep
	// nesting, the never-used byte).
	for _, b := range []string{"\x81\xa3ops\x91\xd4\x01\x80", "\x92\xa1d\x90", "\x81\xa9device_id\xc4\x02ab",
		"\x81\xa1x\xa1\xff", "\x81\xa1x" + strings.Repeat("\x91", 40) + "\xc0", "\x81\xa1x\xc1"} {
		f.Add([]byte(b))
	}
}

// fastAgrees holds the byteReader against the library on data, as a body
// is read and as a stored record is: where the byteReader decodes a
// value, the library decodes the same; where it refuses (but for a layout
// it leaves to the library), the library refuses too.
func fastAgrees[T any](t *testing.T, data []byte) {
	for _, strict := range []bool{true, false} {
		// A store reads only records it wrote, and the library's hand
		// decoders trust a record's lengths: garbage is read as a
		// stored record only when its structure is sound.
		if !strict && syncproto.CheckMsgpack(data) != nil {
			continue
		}
		fast := new(T)
		handled, err := syncproto.DecodeMsgpackFast(data, fast, strict)
		if !handled {
			return
		}
		if errors.Is(err, syncproto.ErrLibraryLayout) {
			continue
		}
		slow := new(T)
		slowErr := syncproto.DecodeMsgpackLibrary(data, slow, strict)
		switch {
		case err == nil && slowErr != nil:
			t.Fatalf("strict=%v: the byteReader decodes a %T the library refuses (%v)", strict, fast, slowErr)
		case err != nil && slowErr == nil:
			t.Fatalf("strict=%v: the byteReader refuses a %T the library decodes: %v", strict, fast, err)
		case err == nil:
			assertEqual(t, slow, fast)
		}
	}
}

// fuzzDecode decodes data as a T in both encodings, and in MessagePack on
// both paths (fastAgrees). A refusal must be an
// invalid_request (or payload_too_large); an accepted body must encode again
// in the same codec and decode to the same value. stored lists the parts of
// an accepted value the server would keep and serve: those must encode and
// decode in both codecs.
func fuzzDecode[T any](t *testing.T, data []byte, stored func(*T) []any) {
	fastAgrees[T](t, data)
	for _, c := range codecs {
		v := new(T)
		if err := c.Unmarshal(data, v); err != nil {
			e := syncproto.AsError(err)
			if e == nil {
				t.Fatalf("%s: %T %v is not an *syncproto.Error", c.MediaType(), err, err)
			}
			if e.Code != syncproto.CodeInvalidRequest && e.Code != syncproto.CodePayloadTooLarge {
				t.Fatalf("%s: code %s (%s), want invalid_request", c.MediaType(), e.Code, e.Message)
			}
			continue
		}
		back := reencode(t, c, v)
		omitEmpty(reflect.ValueOf(v))
		assertEqual(t, v, back)
		if stored == nil {
			continue
		}
		for _, part := range stored(v) {
			for _, c2 := range codecs {
				assertEqual(t, part, reencode(t, c2, part))
			}
		}
	}
}

// omitEmpty sets each empty list of v tagged omitempty to nil: the wire
// leaves both out, so `"have": []` and no have are the same request, and
// a decoded value is compared with its round trip as such.
func omitEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			omitEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f, field := v.Type().Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			if field.Kind() == reflect.Slice && field.Len() == 0 && strings.Contains(f.Tag.Get("json"), ",omitempty") {
				field.Set(reflect.Zero(field.Type()))
				continue
			}
			omitEmpty(field)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			omitEmpty(v.Index(i))
		}
	}
}

// reencode encodes v with c and decodes it into a new value of its type.
func reencode(t *testing.T, c syncproto.Codec, v any) any {
	t.Helper()
	out, err := c.Marshal(v)
	if err != nil {
		t.Fatalf("%s: cannot encode a decoded %T: %v", c.MediaType(), v, err)
	}
	back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := c.Unmarshal(out, back); err != nil {
		t.Fatalf("%s: cannot decode what it encoded: %v\n%q", c.MediaType(), err, out)
	}
	return back
}

func FuzzDecodePush(f *testing.F) {
	// One small push per op type: the fuzzer minimizes every new input it
	// finds, in time quadratic in its size, and a big seed keeps it
	// minimizing instead of fuzzing.
	seeds := []any{&syncproto.PushRequest{}}
	for typ, op := range validOps() {
		op.Body.Notes, op.Body.Reason, op.Body.Comment = "劝", "急", "核"
		if typ == syncproto.OpRecorded {
			op.Body.Photos = nil
		}
		seeds = append(seeds, &syncproto.PushRequest{DeviceID: deviceID, Ops: []syncproto.Op{*op}})
	}
	// The answer, which the SDK decodes.
	seeds = append(seeds, &syncproto.PushResponse{
		Results:       []syncproto.Result{{OpID: id(1), ClientSeq: 1, Status: syncproto.StatusApplied, Version: 2}},
		LastClientSeq: 1, ServerSeq: 9, ReceivedAt: now.Add(123456789),
	})
	addSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode[syncproto.PushResponse](t, data, nil)
		fuzzDecode(t, data, func(req *syncproto.PushRequest) []any {
			// A valid op goes into the log, and its at, body and location
			// into a warning that is pulled in both encodings.
			var valid []any
			for i := range req.Ops {
				if req.Ops[i].Validate() == nil {
					valid = append(valid, &req.Ops[i])
				}
			}
			return valid
		})
	})
}

func FuzzDecodePull(f *testing.F) {
	seeds := []any{
		&syncproto.PullRequest{DeviceID: deviceID, Cursor: syncproto.Cursor{Seq: 5}.Encode(), Limit: 500},
		&syncproto.PullRequest{DeviceID: deviceID},
		&syncproto.PullRequest{DeviceID: deviceID, Have: []syncproto.Have{{ID: warningID, Version: 3, Hash: "0123456789abcdef"}}},
		&syncproto.PullResponse{Cursor: "c", Kept: []string{warningID}},
	}
	// Responses, which the SDK decodes: one small page per kind of change
	// (small for the same reason as in FuzzDecodePush).
	for i, c := range samplePull(4).Changes {
		if i == 0 {
			w := newWarning(syncproto.WarningAssigned, villageTwo, cadreTwoA)
			w.Address = "东风社区"
			c.Data = w
		}
		seeds = append(seeds, &syncproto.PullResponse{Changes: []syncproto.Change{c}, Cursor: "c", More: true})
	}
	addSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode[syncproto.PullRequest](t, data, nil)
		// What a server (or something pretending to be one) answers must
		// not crash the SDK either.
		fuzzDecode[syncproto.PullResponse](t, data, nil)
	})
}

func FuzzDecodeFeed(f *testing.F) {
	req, _ := wireValues()[6].v.(*syncproto.FeedRequest)
	if req == nil {
		f.Fatal("wireValues()[6] is not the FeedRequest")
	}
	addSeeds(f, req, &syncproto.FeedRequest{Warnings: []syncproto.FeedWarning{{}}})
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, func(req *syncproto.FeedRequest) []any {
			// A valid row becomes a warning pulled in both encodings.
			var valid []any
			for i := range req.Warnings {
				if req.Warnings[i].Validate(now) == nil {
					valid = append(valid, &req.Warnings[i])
				}
			}
			return valid
		})
	})
}
