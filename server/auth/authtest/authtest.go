// Package authtest makes password hashing cheap in test binaries.
//
// Every login checks an argon2id hash that costs 19 MiB and about 45 ms of
// a core by design (400 ms under the race detector), and test suites sign
// in thousands of times: that cost would be most of their run time and
// make them depend on how fast the machine is. A test binary calls
// UseCheapHashes once, in TestMain; from then on new hashes, and the dummy
// check of unknown usernames, use the cheapest parameters argon2id accepts.
// Hashes keep their parameters in their text, so a hash made at either cost
// checks correctly at the other.
package authtest

import (
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/server/auth/internal/hashcost"
)

// Cheap are the parameters of hashes made after UseCheapHashes: 64 KiB, one
// pass, one lane (microseconds, against milliseconds).
var Cheap = hashcost.Params{Memory: 64, Time: 1, Threads: 1}

// UseCheapHashes makes every password hash made from now on, in this test
// binary, cheap. It panics outside a binary built by `go test`, so no
// production code can select it.
func UseCheapHashes() {
	if !testing.Testing() {
		panic("authtest: cheap password hashes outside a test binary")
	}
	hashcost.Set(Cheap)
}

// Main is the TestMain of a package whose tests sign in: cheap hashes,
// then the tests.
//
//	func TestMain(m *testing.M) { authtest.Main(m) }
func Main(m *testing.M) {
	UseCheapHashes()
	os.Exit(m.Run())
}
