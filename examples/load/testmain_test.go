package main

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/authtest"
)

// TestMain makes password hashing cheap: these tests sign in many times.
func TestMain(m *testing.M) { authtest.Main(m) }
