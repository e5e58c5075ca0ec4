package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/fieldsync/fieldsync/server/auth/internal/hashcost"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Password length limits, in bytes (a Chinese character is three).
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 256
)

// Shape of new argon2id hashes. Their cost parameters are
// hashcost.Current(): OWASP's minimum (19 MiB, two passes, one lane), lowered
// only inside test binaries (package authtest).
const (
	argonSaltLen = 16
	argonKeyLen  = 32
	argonVersion = argon2.Version // 19
	argonPrefix  = "$argon2id$"
)

// Bounds on the parameters CheckPassword accepts from a stored hash, so a
// corrupt or planted hash cannot make one login take a gigabyte or a minute.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	minArgonSalt    = 8
	maxArgonSalt    = 64
	minArgonKey     = 16
	maxArgonKey     = 64
	maxBcryptCost   = 14
)

// argonSlots bounds how many argon2 computations run at once: one a core.
// Each holds 19 MiB of RAM and a core (one lane); more at once would only
// queue on the CPU while multiplying memory (four on two cores made a
// burst of sign-ins 76 MiB of the server's memory), so a burst of logins
// waits here instead.
var argonSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding.Strict()

// argonParams are the cost parameters of one hash.
type argonParams = hashcost.Params

// dummySalt is the salt of DummyCheck's computation, whose result is thrown
// away: only its cost matters.
var dummySalt = []byte("fieldsync-dummy!")

// ValidatePassword refuses a password shorter than MinPasswordBytes or longer
// than MaxPasswordBytes with an invalid_request naming the field "password".
func ValidatePassword(pw string) error {
	if len(pw) < MinPasswordBytes {
		return syncproto.InvalidField("password", "the password must be at least %d bytes long", MinPasswordBytes)
	}
	if len(pw) > MaxPasswordBytes {
		return syncproto.InvalidField("password", "the password must be at most %d bytes long", MaxPasswordBytes)
	}
	return nil
}

// HashPassword returns an argon2id hash of pw with a fresh random salt, in
// the PHC string format `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`. It
// refuses a password ValidatePassword refuses (the *syncproto.Error is in the
// returned error's chain).
func HashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: hash password: read salt: %w", err)
	}
	p := hashcost.Current()
	sum := argonKey(pw, salt, p, argonKeyLen)
	return encodeArgon(p, salt, sum), nil
}

// CheckPassword reports whether pw matches hash, comparing in constant time.
// hash is an argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$). A
// malformed hash, or one whose parameters exceed sane bounds, is false; it
// never panics.
func CheckPassword(hash, pw string) bool {
	if strings.HasPrefix(hash, argonPrefix) {
		p, salt, want, ok := decodeArgon(hash)
		if !ok {
			return false
		}
		got := argonKey(pw, salt, p, uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1
	}
	if isBcrypt(hash) {
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || cost > maxBcryptCost {
			return false
		}
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
	}
	return false
}

// DummyCheck costs what CheckPassword costs for a wrong password against a
// hash HashPassword makes: the same argon2id computation with the same
// parameters. A login for an unknown username calls it, so the response
// time does not tell which usernames exist.
func DummyCheck(pw string) {
	argonKey(pw, dummySalt, hashcost.Current(), argonKeyLen)
}

// NeedsRehash reports whether hash should be replaced after the next
// successful login: it is bcrypt, malformed, or argon2id with other
// parameters than HashPassword uses now.
func NeedsRehash(hash string) bool {
	if !strings.HasPrefix(hash, argonPrefix) {
		return true
	}
	p, salt, sum, ok := decodeArgon(hash)
	return !ok || p != hashcost.Current() || len(salt) < argonSaltLen || len(sum) != argonKeyLen
}

// idKey is argon2.IDKey; a test replaces it to see the work each call asks.
var idKey = argon2.IDKey

// argonKey runs argon2id, at most cap(argonSlots) at a time.
func argonKey(pw string, salt []byte, p argonParams, keyLen uint32) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return idKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
}

// encodeArgon formats a PHC string.
func encodeArgon(p argonParams, salt, sum []byte) string {
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s",
		argonPrefix, argonVersion, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// decodeArgon parses a PHC argon2id string strictly: exactly
// $argon2id$v=19$m=M,t=T,p=P$salt$hash, decimal parameters within bounds,
// canonical unpadded base64.
func decodeArgon(s string) (p argonParams, salt, sum []byte, ok bool) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, false
	}
	if parts[2] != "v="+strconv.Itoa(argonVersion) {
		return p, nil, nil, false
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, false
	}
	m, okM := param(kv[0], "m=", maxArgonMemory)
	t, okT := param(kv[1], "t=", maxArgonTime)
	th, okP := param(kv[2], "p=", maxArgonThreads)
	if !okM || !okT || !okP || m < 8*th {
		return p, nil, nil, false
	}
	p = argonParams{Memory: m, Time: t, Threads: uint8(th)}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minArgonSalt || len(salt) > maxArgonSalt {
		return p, nil, nil, false
	}
	sum, err = b64.DecodeString(parts[5])
	if err != nil || len(sum) < minArgonKey || len(sum) > maxArgonKey {
		return p, nil, nil, false
	}
	return p, salt, sum, true
}

// param parses "name=N" with 1 <= N <= max, plain decimal digits only.
func param(s, name string, max uint32) (uint32, bool) {
	v, found := strings.CutPrefix(s, name)
	if !found || v == "" || len(v) > 10 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > uint64(max) {
		return 0, false
	}
	return uint32(n), true
}

// isBcrypt reports whether hash looks like a bcrypt hash of a version Go's
// bcrypt reads.
func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}
