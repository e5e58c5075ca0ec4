package clustertest_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/authtest"
)

// TestMain makes password hashing cheap: the test hashes its users'
// passwords, and the children check sign-ins against those cheap hashes.
func TestMain(m *testing.M) { authtest.Main(m) }
