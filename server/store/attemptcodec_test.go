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

// codecAttemptOf is a cadre's recorded visit as Apply makes it, the
// attempt of a typical dissuasion.recorded (as the load program sends it).
func codecAttemptOf() syncproto.Attempt {
	return syncproto.Attempt{ID: codecAttempt, By: codecUser, DeviceID: codecDevice, Method: syncproto.MethodVisit,
		Reached: true, Outcome: syncproto.OutcomeDissuaded,
		Notes: "电话联系本人，已告知刷单返利均为诈骗，本人表示理解并卸载了相关APP。",
		At:    codecTime(1_764_999_000, 5_000_000), ReceivedAt: codecTime(1_765_000_000, 123_456_789),
		Location: &syncproto.Location{Lat: 34.0315, Lng: 113.8523, Accuracy: 15}, Version: 215_311}
}

// codecAttempts are attempts of every shape the store writes, and some it
// does not but must still keep exactly.
func codecAttempts() map[string]syncproto.Attempt {
	typical := codecAttemptOf()
	photos := typical
	photos.LossFen, photos.Photos = 120_000, []string{codecPhoto, strings.Repeat("ab", 32)}
	bare := syncproto.Attempt{ID: codecAttempt, By: codecUser, DeviceID: codecDevice, Method: syncproto.MethodPhone,
		Outcome: syncproto.OutcomeUnreachable, At: codecTime(1_764_999_000, 0), ReceivedAt: codecTime(1_765_000_000, 0), Version: 7}
	// A redacted attempt: no notes and no place, its photos kept.
	redacted := photos
	redacted.Notes, redacted.Location = "", nil
	zeroTimes := typical
	zeroTimes.At, zeroTimes.ReceivedAt = time.Time{}, time.Time{}
	// Ids that are not canonical UUIDs (an older client's, an uppercase
	// one), a hash that is not hexadecimal, a place at zero, a negative
	// loss and a time before 1970: never written, but kept if they were.
	odd := typical
	odd.ID, odd.By, odd.DeviceID = "attempt-1", strings.ToUpper(codecUser), ""
	odd.Photos = []string{"not a hash", "ABCDEF", ""}
	odd.Location = &syncproto.Location{}
	odd.LossFen = -5
	odd.At = codecTime(-86_400, 1)
	noVersion := typical
	noVersion.Version = 0
	return map[string]syncproto.Attempt{
		"Typical":   typical,
		"Photos":    photos,
		"Bare":      bare,
		"Redacted":  redacted,
		"ZeroTimes": zeroTimes,
		"Odd":       odd,
		"NoVersion": noVersion,
		"Empty":     {},
	}
}

func TestAttemptCodec_RoundTrip(t *testing.T) {
	for name, a := range codecAttempts() {
		t.Run(name, func(t *testing.T) {
			data := store.EncodeAttempt(&a)
			if data[0] != 0xc1 {
				t.Fatalf("compact attempt starts with 0x%02x", data[0])
			}
			var got syncproto.Attempt
			if err := store.DecodeAttempt(data, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Fatalf("decoded attempt differs (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestAttemptCodec_OldForm: the MessagePack maps stores hold from before
// the compact form decode as they always did, to what the compact form
// gives.
func TestAttemptCodec_OldForm(t *testing.T) {
	for name, a := range codecAttempts() {
		t.Run(name, func(t *testing.T) {
			old, err := syncproto.MarshalMsgpack(&a)
			if err != nil {
				t.Fatal(err)
			}
			if old[0] == 0xc1 {
				t.Fatal("the older form starts with the compact tag")
			}
			var got syncproto.Attempt
			if err := store.DecodeAttempt(old, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Fatalf("old attempt decodes differently (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestAttemptCodec_EmptyPhotos: an empty list of photos reads back as
// none from either form, as the older one always gave it.
func TestAttemptCodec_EmptyPhotos(t *testing.T) {
	a := codecAttemptOf()
	a.Photos = []string{}
	old, err := syncproto.MarshalMsgpack(&a)
	if err != nil {
		t.Fatal(err)
	}
	for form, data := range map[string][]byte{"Compact": store.EncodeAttempt(&a), "Old": old} {
		var got syncproto.Attempt
		if err := store.DecodeAttempt(data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Photos != nil || !store.AttemptEqual(&a, &got) {
			t.Errorf("%s: an attempt with an empty list of photos reads back as %+v", form, got)
		}
	}
}

// TestAttemptCodec_Compact: the compact form is what it is for: ids and
// hashes as bytes, no keys. A typical attempt is about half its
// MessagePack map.
func TestAttemptCodec_Compact(t *testing.T) {
	a := codecAttempts()["Photos"]
	data := store.EncodeAttempt(&a)
	old, err := syncproto.MarshalMsgpack(&a)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > len(old)*6/10 {
		t.Errorf("compact attempt %d B, MessagePack map %d B", len(data), len(old))
	}
	for _, s := range []string{codecAttempt, codecUser, codecDevice, codecPhoto, "device_id", "received_at"} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("compact attempt holds %q as text", s)
		}
	}
	// A typical attempt leaves out its empty trailing field (photos)
	// altogether.
	typical := codecAttemptOf()
	withPhotos := typical
	withPhotos.Photos = []string{codecPhoto}
	if n, m := len(store.EncodeAttempt(&typical)), len(store.EncodeAttempt(&withPhotos)); m-n != 2+32+1 {
		t.Errorf("a photo adds %d B to an attempt, want its 32 bytes, their header and the list's", m-n)
	}
}

// TestAttemptCodec_Corrupt: a compact value this code did not write is an
// error, not a guess.
func TestAttemptCodec_Corrupt(t *testing.T) {
	a := codecAttempts()["Photos"]
	good := store.EncodeAttempt(&a)
	for name, data := range map[string][]byte{
		"Truncated":  good[:len(good)-1],
		"Trailing":   append(bytes.Clone(good), 0xc0),
		"TagOnly":    {0xc1},
		"TooMany":    {0xc1, 0x9e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		"ShortID":    {0xc1, 0x91, 0xc4, 2, 0xab, 0xcd},
		"NotAString": {0xc1, 0x94, 0xc0, 0xc0, 0xc0, 0xc2},
		"WordZero":   {0xc1, 0x94, 0xc0, 0xc0, 0xc0, 0x00},
		"NoSuchWord": {0xc1, 0x94, 0xc0, 0xc0, 0xc0, store.UnknownWord},
		"NotABool":   {0xc1, 0x95, 0xc0, 0xc0, 0xc0, 0xa0, 0x01},
		"BadTime":    {0xc1, 0x99, 0xc0, 0xc0, 0xc0, 0xa0, 0xc2, 0xa0, 0, 0xa0, 0xd6, 0x00, 0, 0, 0, 0},
		"EmptyHash":  {0xc1, 0x9d, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0x91, 0xc4, 0},
		"Photos":     {0xc1, 0x9d, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"OldBroken":  {0x81, 0xa2, 'i', 'd'},
	} {
		t.Run(name, func(t *testing.T) {
			var got syncproto.Attempt
			if err := store.DecodeAttempt(data, &got); err == nil {
				t.Fatalf("decoded %x to %+v", data, got)
			}
		})
	}
}

// FuzzDecodeAttempt feeds the attempt decoder anything: it must not
// panic, and what it decodes from a compact value encodes again to a
// value that decodes the same.
func FuzzDecodeAttempt(f *testing.F) {
	for _, a := range codecAttempts() {
		f.Add(store.EncodeAttempt(&a))
		if old, err := syncproto.MarshalMsgpack(&a); err == nil {
			f.Add(old)
		}
	}
	same := cmpopts.EquateNaNs()
	f.Fuzz(func(t *testing.T, data []byte) {
		var a syncproto.Attempt
		if err := store.DecodeAttempt(data, &a); err != nil || len(data) == 0 || data[0] != 0xc1 {
			return
		}
		var again syncproto.Attempt
		if err := store.DecodeAttempt(store.EncodeAttempt(&a), &again); err != nil {
			t.Fatalf("re-encoded attempt: %v", err)
		}
		if diff := cmp.Diff(a, again, same); diff != "" {
			t.Fatalf("re-encoded attempt differs:\n%s", diff)
		}
	})
}

// BenchmarkAttemptCodec times encoding and decoding a typical attempt (a
// cadre's dissuasion.recorded visit with notes and a place, as the load
// program records it) in the older MessagePack map and in the compact
// form the store writes, and reports the value's size (value-B).
func BenchmarkAttemptCodec(b *testing.B) {
	a := codecAttemptOf()
	decode := func(d []byte) error { var a syncproto.Attempt; return store.DecodeAttempt(d, &a) }
	benchCodec(b, "MessagePack", func() ([]byte, error) { return syncproto.MarshalMsgpack(&a) }, decode)
	benchCodec(b, "Compact", func() ([]byte, error) { return store.EncodeAttempt(&a), nil }, decode)
}
