package main

import (
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/authtest"
)

// TestMain makes password hashing cheap for the whole package: its tests
// sign in many times, and argon2id at production cost would make them slow
// and dependent on the machine's speed.
func TestMain(m *testing.M) {
	authtest.UseCheapHashes()
	os.Exit(m.Run())
}
