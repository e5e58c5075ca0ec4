package syncproto_test

import (
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
// compared as generic maps; the hand decoder must read the reflection's
// bytes back to the same value. A field added without codec support
// fails here.
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
			back := reflect.New(typ)
			if err := syncproto.Msgpack.Unmarshal(data, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(v, back.Interface()); d != "" {
				t.Fatalf("the hand decoder of %s lost fields (-filled +decoded):\n%s", typ.Name(), d)
			}
		})
	}
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
