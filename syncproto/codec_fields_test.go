package syncproto_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The hand-written MessagePack codecs must write and read every field, as
// the library's reflection would. Each type is filled in every field with
// a value that is not empty, encoded both by hand and by reflection (the
// same fields in a struct type without the codec's methods), and the two
// compared as generic maps; every decoding path must read the
// reflection's bytes back to the same value. A field added without codec
// support fails here.
func TestMsgpackCodecs_EveryField(t *testing.T) {
	for _, v := range []any{
		&syncproto.Warning{}, &syncproto.Attempt{}, &syncproto.Review{}, &syncproto.Escalation{}, &syncproto.Flag{}, &syncproto.Location{},
		&syncproto.Op{}, &syncproto.OpBody{}, &syncproto.Result{}, &syncproto.WarningItem{},
	} {
		typ := reflect.TypeOf(v).Elem()
		t.Run(typ.Name(), func(t *testing.T) {
			fill(reflect.ValueOf(v).Elem(), 1)
			if typ == reflect.TypeOf(syncproto.Warning{}) {
				// A summary writes its attempts in their summary form;
				// TestSummarize covers it.
				v.(*syncproto.Warning).Summary = false
			}
			byHand := generic(t, v)
			plain := reflect.New(withoutMethods(typ))
			plain.Elem().Set(reflect.ValueOf(v).Elem().Convert(plain.Elem().Type()))
			byReflection := generic(t, plain.Interface())
			if d := cmp.Diff(byReflection, byHand); d != "" {
				t.Fatalf("the hand codec of %s writes other keys or values than reflection (-reflection +hand):\n%s", typ.Name(), d)
			}
			if w, ok := v.(*syncproto.Warning); ok {
				// Read back, the summary mark counts like any field.
				w.Summary = true
				plain.Elem().Set(reflect.ValueOf(v).Elem().Convert(plain.Elem().Type()))
			}
			data, err := syncproto.Msgpack.Marshal(plain.Interface())
			if err != nil {
				t.Fatal(err)
			}
			requireDecodesTo(t, data, v)
		})
	}
}

// TestMsgpackDecoders_EveryField: the bodies the byteReader decodes by
// hand on the hot paths (push and pull, both ways), which the library
// decodes by reflection, are read whole by every path.
func TestMsgpackDecoders_EveryField(t *testing.T) {
	for _, v := range []any{
		&syncproto.PushRequest{}, &syncproto.PushResponse{}, &syncproto.PullRequest{}, &syncproto.PullResponse{}, &syncproto.Change{},
	} {
		typ := reflect.TypeOf(v).Elem()
		t.Run(typ.Name(), func(t *testing.T) {
			fill(reflect.ValueOf(v).Elem(), 1)
			switch v := v.(type) {
			case *syncproto.Change:
				fillChange(v, 1)
			case *syncproto.PullResponse:
				for i := range v.Changes {
					fillChange(&v.Changes[i], i+1)
				}
			}
			data, err := syncproto.Msgpack.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			requireDecodesTo(t, data, v)
		})
	}
}

// fillChange makes a filled change a warning put, whose data fill cannot
// set (an any).
func fillChange(c *syncproto.Change, n int) {
	w := &syncproto.Warning{}
	fill(reflect.ValueOf(w).Elem(), n)
	c.Entity, c.Data = syncproto.EntityWarning, w
}

// requireDecodesTo fails t unless data decodes to want on every path: the
// byteReader as Msgpack.Unmarshal and as UnmarshalMsgpack read, the
// library alone in both, and the two functions themselves.
func requireDecodesTo(t *testing.T, data []byte, want any) {
	t.Helper()
	typ := reflect.TypeOf(want).Elem()
	for _, path := range []struct {
		name   string
		decode func(v any) error
	}{
		{"Fast", func(v any) error { return decodeFast(data, v, true) }},
		{"FastStored", func(v any) error { return decodeFast(data, v, false) }},
		{"Library", func(v any) error { return syncproto.DecodeMsgpackLibrary(data, v, true) }},
		{"LibraryStored", func(v any) error { return syncproto.DecodeMsgpackLibrary(data, v, false) }},
		{"Msgpack.Unmarshal", func(v any) error { return syncproto.Msgpack.Unmarshal(data, v) }},
		{"UnmarshalMsgpack", func(v any) error { return syncproto.UnmarshalMsgpack(data, v) }},
	} {
		back := reflect.New(typ)
		if err := path.decode(back.Interface()); err != nil {
			t.Fatalf("%s: %v", path.name, err)
		}
		if d := cmp.Diff(want, back.Interface()); d != "" {
			t.Fatalf("%s lost fields of %s (-filled +decoded):\n%s", path.name, typ.Name(), d)
		}
	}
}

// decodeFast decodes on the byteReader alone, which must know v's type.
func decodeFast(data []byte, v any, strict bool) error {
	handled, err := syncproto.DecodeMsgpackFast(data, v, strict)
	if !handled {
		return fmt.Errorf("the byteReader has no decoder for %T", v)
	}
	return err
}

// withoutMethods is a struct type with typ's fields and tags and none of
// its methods: the library encodes it by reflection.
func withoutMethods(typ reflect.Type) reflect.Type {
	fields := make([]reflect.StructField, typ.NumField())
	for i := range fields {
		fields[i] = typ.Field(i)
	}
	return reflect.StructOf(fields)
}

// generic is v encoded as the wire encodes it and decoded into plain maps.
func generic(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := syncproto.Msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := msgpack.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var filledTime = time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)

// fill sets every field of v, recursively, to a value that is not empty;
// n varies the values.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(filledTime.Add(time.Duration(n) * time.Minute)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n+i)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), n)
		fill(v.Index(1), n+1)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		key, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(key, n)
		fill(val, n)
		v.SetMapIndex(key, val)
	case reflect.String:
		v.SetString("s" + string(rune('a'+n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) + 0.5)
	case reflect.Interface:
		v.Set(reflect.ValueOf("s"))
	}
}
