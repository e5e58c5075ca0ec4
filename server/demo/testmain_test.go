package demo_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/authtest"
)

// TestMain makes password hashing cheap: the seeded city's people sign in.
func TestMain(m *testing.M) { authtest.Main(m) }
