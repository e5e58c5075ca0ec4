package syncproto_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestStateHash: the hash names the state a full pull page carries, so
// a warning decoded from a page hashes as the one encoded into it, and
// any change of a byte gives another hash.
func TestStateHash(t *testing.T) {
	w := realisticWarning()
	h, err := syncproto.StateHash(w)
	if err != nil {
		t.Fatal(err)
	}
	if !syncproto.ValidStateHash(h) {
		t.Fatalf("hash %q is not 16 lowercase hex digits", h)
	}
	for _, c := range codecs {
		t.Run("AfterThe"+c.MediaType()+"Wire", func(t *testing.T) {
			data, err := c.Marshal(&syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityWarning, ID: w.ID, Version: w.Version, Data: w})
			if err != nil {
				t.Fatal(err)
			}
			var ch syncproto.Change
			if err := c.Unmarshal(data, &ch); err != nil {
				t.Fatal(err)
			}
			got, err := syncproto.StateHash(ch.Data.(*syncproto.Warning))
			if err != nil {
				t.Fatal(err)
			}
			if got != h {
				t.Errorf("hash after a round trip %s, want %s", got, h)
			}
		})
	}
	t.Run("AnotherState", func(t *testing.T) {
		for name, change := range map[string]func(w *syncproto.Warning){
			"Version":       func(w *syncproto.Warning) { w.Version++ },
			"MissingPhotos": func(w *syncproto.Warning) { w.MissingPhotos = append(w.MissingPhotos, "ab") },
			"ReviewerName":  func(w *syncproto.Warning) { w.Reviews = append(w.Reviews, syncproto.Review{By: townLead, ByName: "x"}) },
		} {
			c := w.Clone()
			change(c)
			got, err := syncproto.StateHash(c)
			if err != nil {
				t.Fatal(err)
			}
			if got == h {
				t.Errorf("%s: the same hash for another state", name)
			}
		}
	})
}

// TestValidStateHash: the form a pull's have must give.
func TestValidStateHash(t *testing.T) {
	for h, want := range map[string]bool{
		"0123456789abcdef": true, "0123456789ABCDEF": false, "0123456789abcde": false,
		"0123456789abcdef0": false, "0123456789abcdeg": false, "": false,
	} {
		if got := syncproto.ValidStateHash(h); got != want {
			t.Errorf("ValidStateHash(%q) = %v, want %v", h, got, want)
		}
	}
}
