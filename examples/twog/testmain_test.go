package main

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/authtest"
)

// TestMain makes password hashing cheap: the setup signs in the county's
// forty-odd people.
func TestMain(m *testing.M) { authtest.Main(m) }
