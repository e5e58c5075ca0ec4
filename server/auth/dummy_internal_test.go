package auth

import (
	"testing"
)

// TestDummyCheck: an unknown username costs what a wrong password costs,
// because DummyCheck asks argon2id for exactly the work a check of a hash
// HashPassword made asks. The work is compared, not timed, so a busy
// machine cannot fail the test.
func TestDummyCheck(t *testing.T) {
	type work struct {
		time, memory uint32
		threads      uint8
		keyLen       uint32
	}
	var calls []work
	real := idKey
	idKey = func(pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		calls = append(calls, work{time, memory, threads, keyLen})
		return real(pw, salt, time, memory, threads, keyLen)
	}
	t.Cleanup(func() { idKey = real })

	h, err := HashPassword("password1234")
	if err != nil {
		t.Fatal(err)
	}
	calls = nil
	if CheckPassword(h, "wrong password") {
		t.Fatal("a wrong password matched")
	}
	DummyCheck("wrong password")
	if len(calls) != 2 {
		t.Fatalf("%d argon2id computations, want one for the check and one for the dummy", len(calls))
	}
	if calls[0] != calls[1] {
		t.Errorf("a wrong password costs %+v, an unknown username %+v", calls[0], calls[1])
	}
}
