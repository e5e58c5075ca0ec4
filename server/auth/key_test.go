package auth_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestNewKey(t *testing.T) {
	k := MustNewKey(t)
	if len(k.ID) != 16 {
		t.Fatalf("ID = %q, want 16 hex digits", k.ID)
	}
	for _, c := range k.ID {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			t.Fatalf("ID = %q, want lowercase hex", k.ID)
		}
	}
	if !k.Created.Equal(t0) {
		t.Errorf("Created = %v", k.Created)
	}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	if k2 := MustNewKey(t); k2.ID == k.ID || k2.Private.Equal(k.Private) {
		t.Fatal("two new keys are equal")
	}
}

// TestKey_Msgpack checks that the store can keep a Key as it is, with the
// codec the rest of the project uses, and get a key that still verifies.
func TestKey_Msgpack(t *testing.T) {
	k := MustNewKey(t)
	b, err := syncproto.MarshalMsgpack(k)
	if err != nil {
		t.Fatal(err)
	}
	var got auth.Key
	if err := syncproto.UnmarshalMsgpack(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !got.Private.Equal(k.Private) || !got.Created.Equal(k.Created) {
		t.Fatalf("round trip: %+v, want %+v", got, k)
	}

	iss, err := auth.NewIssuer([]auth.Key{k}, k.ID, 0, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	tok := MustIssue(t, iss)
	restored, err := auth.NewIssuer([]auth.Key{got}, got.ID, 0, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restored.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFromSeed(t *testing.T) {
	k := MustNewKey(t)
	seed := k.Seed()
	if len(seed) != 32 {
		t.Fatalf("seed is %d bytes", len(seed))
	}
	got, err := auth.KeyFromSeed(k.ID, seed, k.Created)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Private.Equal(k.Private) || !bytes.Equal(got.Public(), k.Public()) {
		t.Fatal("key from seed differs")
	}
	if _, err := auth.KeyFromSeed(k.ID, seed[:31], k.Created); err == nil {
		t.Fatal("31-byte seed accepted")
	}
	if _, err := auth.KeyFromSeed("", seed, k.Created); err == nil {
		t.Fatal("empty id accepted")
	}
	var zero auth.Key
	if zero.Seed() != nil || zero.Public() != nil || zero.Validate() == nil {
		t.Fatal("zero key is not refused")
	}
}
