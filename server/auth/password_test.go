package auth_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/auth/authtest"
	"github.com/fieldsync/fieldsync/server/auth/internal/hashcost"
	"github.com/fieldsync/fieldsync/syncproto"
)

// MustHash hashes pw or fails the test.
func MustHash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := auth.HashPassword(pw)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestHashPassword(t *testing.T) {
	const pw = "correct horse battery staple"
	h := MustHash(t, pw)

	t.Run("Format", func(t *testing.T) {
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash = %q", h)
		}
		parts := strings.Split(h, "$")
		if len(parts) != 6 {
			t.Fatalf("hash has %d $-fields", len(parts))
		}
		salt, err := base64.RawStdEncoding.DecodeString(parts[4])
		if err != nil || len(salt) != 16 {
			t.Errorf("salt %q: %d bytes, %v", parts[4], len(salt), err)
		}
		sum, err := base64.RawStdEncoding.DecodeString(parts[5])
		if err != nil || len(sum) != 32 {
			t.Errorf("hash %q: %d bytes, %v", parts[5], len(sum), err)
		}
		// It is the argon2id a PHC-aware tool would compute.
		if want := argon2.IDKey([]byte(pw), salt, 2, 19456, 1, 32); string(want) != string(sum) {
			t.Error("hash is not argon2id(pw, salt, t=2, m=19456, p=1)")
		}
	})

	t.Run("Check", func(t *testing.T) {
		if !auth.CheckPassword(h, pw) {
			t.Fatal("right password refused")
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		for _, wrong := range []string{"", "correct horse battery stapl", "correct horse battery staple ", "Correct horse battery staple"} {
			if auth.CheckPassword(h, wrong) {
				t.Errorf("wrong password %q accepted", wrong)
			}
		}
	})

	t.Run("SaltDiffers", func(t *testing.T) {
		h2 := MustHash(t, pw)
		if h == h2 {
			t.Fatal("two hashes of one password are equal")
		}
		if !auth.CheckPassword(h2, pw) {
			t.Fatal("second hash refused the password")
		}
	})

	t.Run("Unicode", func(t *testing.T) {
		const cn = "反诈宣传到户密码"
		h := MustHash(t, cn)
		if !auth.CheckPassword(h, cn) || auth.CheckPassword(h, cn[:len(cn)-3]) {
			t.Fatal("unicode password mishandled")
		}
	})

	t.Run("RefusesInvalid", func(t *testing.T) {
		for _, bad := range []string{"", "short", strings.Repeat("x", 257)} {
			_, err := auth.HashPassword(bad)
			e := mustCode(t, err, syncproto.CodeInvalidRequest)
			if e.Details["field"] != "password" {
				t.Errorf("details = %v", e.Details)
			}
		}
	})

	t.Run("NoRehashNeeded", func(t *testing.T) {
		if auth.NeedsRehash(h) {
			t.Fatal("a fresh hash needs rehash")
		}
	})
}

func TestCheckPassword_Malformed(t *testing.T) {
	const pw = "password1234"
	good := MustHash(t, pw)
	parts := strings.Split(good, "$")
	salt, sum := parts[4], parts[5]
	with := func(v, params, s, h string) string {
		return "$argon2id$" + v + "$" + params + "$" + s + "$" + h
	}
	cases := map[string]string{
		"Empty":             "",
		"Dollar":            "$",
		"OnlyPrefix":        "$argon2id$",
		"Plaintext":         pw,
		"Argon2i":           strings.Replace(good, "$argon2id$", "$argon2i$", 1),
		"Argon2d":           strings.Replace(good, "$argon2id$", "$argon2d$", 1),
		"NoVersion":         "$argon2id$m=19456,t=2,p=1$" + salt + "$" + sum,
		"Version16":         with("v=16", "m=19456,t=2,p=1", salt, sum),
		"VersionJunk":       with("v=19x", "m=19456,t=2,p=1", salt, sum),
		"ParamsReordered":   with("v=19", "t=2,m=19456,p=1", salt, sum),
		"ParamsMissing":     with("v=19", "m=19456,t=2", salt, sum),
		"ParamsExtra":       with("v=19", "m=19456,t=2,p=1,k=3", salt, sum),
		"ParamNegative":     with("v=19", "m=-1,t=2,p=1", salt, sum),
		"ParamPlus":         with("v=19", "m=+19456,t=2,p=1", salt, sum),
		"ParamHex":          with("v=19", "m=0x4c00,t=2,p=1", salt, sum),
		"ParamOverflow":     with("v=19", "m=99999999999999999999,t=2,p=1", salt, sum),
		"ParamEmpty":        with("v=19", "m=,t=2,p=1", salt, sum),
		"TimeZero":          with("v=19", "m=19456,t=0,p=1", salt, sum),
		"ThreadsZero":       with("v=19", "m=19456,t=2,p=0", salt, sum),
		"ThreadsHuge":       with("v=19", "m=19456,t=2,p=255", salt, sum),
		"MemoryHuge":        with("v=19", "m=4294967295,t=2,p=1", salt, sum),
		"TimeHuge":          with("v=19", "m=19456,t=4294967295,p=1", salt, sum),
		"MemoryBelow8P":     with("v=19", "m=8,t=2,p=2", salt, sum),
		"SaltNotBase64":     with("v=19", "m=19456,t=2,p=1", "!!!!", sum),
		"SaltPadded":        with("v=19", "m=19456,t=2,p=1", base64.StdEncoding.EncodeToString([]byte("0123456789abcde")), sum),
		"SaltEmpty":         with("v=19", "m=19456,t=2,p=1", "", sum),
		"SaltTooShort":      with("v=19", "m=19456,t=2,p=1", "YWJj", sum),
		"HashEmpty":         with("v=19", "m=19456,t=2,p=1", salt, ""),
		"HashTruncated":     with("v=19", "m=19456,t=2,p=1", salt, sum[:10]),
		"HashURLAlphabet":   with("v=19", "m=19456,t=2,p=1", salt, strings.NewReplacer("+", "-", "/", "_").Replace(sum)+"-_"),
		"TrailingDollar":    good + "$",
		"LeadingSpace":      " " + good,
		"BcryptGarbage":     "$2a$10$notreallyabcrypthash",
		"BcryptCostTooHigh": "$2a$31$" + strings.Repeat("a", 53),
		"Unknown":           "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA",
		"NUL":               "\x00",
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			if auth.CheckPassword(h, pw) {
				t.Fatalf("CheckPassword(%q) = true", h)
			}
			if !auth.NeedsRehash(h) {
				t.Errorf("NeedsRehash(%q) = false", h)
			}
		})
	}
}

func TestCheckPassword_OtherParams(t *testing.T) {
	// A hash made with other (cheaper) parameters still checks, and asks to
	// be upgraded.
	const pw = "password1234"
	salt := []byte("0123456789abcdef")
	sum := argon2.IDKey([]byte(pw), salt, 1, 1024, 2, 24)
	b64 := base64.RawStdEncoding
	h := fmt.Sprintf("$argon2id$v=19$m=1024,t=1,p=2$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(sum))
	if !auth.CheckPassword(h, pw) {
		t.Fatal("refused a hash with other parameters")
	}
	if auth.CheckPassword(h, "password1235") {
		t.Fatal("accepted a wrong password")
	}
	if !auth.NeedsRehash(h) {
		t.Fatal("NeedsRehash = false for non-default parameters")
	}
}

func TestCheckPassword_Bcrypt(t *testing.T) {
	const pw = "password1234"
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(string(h), pw) {
		t.Fatal("bcrypt hash refused the right password")
	}
	if auth.CheckPassword(string(h), "password1235") {
		t.Fatal("bcrypt hash accepted a wrong password")
	}
	if !auth.NeedsRehash(string(h)) {
		t.Fatal("bcrypt hash does not need rehash")
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"", false},
		{"1234567", false},
		{"12345678", true},
		{"密码", false}, // 6 bytes: two characters of three bytes each
		{"密码密", true}, // 9 bytes
		{strings.Repeat("x", 256), true},
		{strings.Repeat("x", 257), false},
	} {
		err := auth.ValidatePassword(tc.pw)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidatePassword(%d bytes) = %v", len(tc.pw), err)
			}
			continue
		}
		e := mustCode(t, err, syncproto.CodeInvalidRequest)
		if e.Details["field"] != "password" {
			t.Errorf("details = %v", e.Details)
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	h := MustHash(b, "password1234")
	for b.Loop() {
		if !auth.CheckPassword(h, "password1234") {
			b.Fatal("refused")
		}
	}
}

func BenchmarkDummyCheck(b *testing.B) {
	for b.Loop() {
		auth.DummyCheck("password1234")
	}
}

// TestUseCheapHashes: a test binary that lowers the cost makes cheap hashes
// that check, and the production hashes made before still check; each
// needs a rehash at the other cost.
func TestUseCheapHashes(t *testing.T) {
	prod := MustHash(t, "password1234")
	authtest.UseCheapHashes()
	t.Cleanup(func() { hashcost.Set(hashcost.Production) })
	cheap := MustHash(t, "password1234")
	if !strings.HasPrefix(cheap, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("cheap hash = %q", cheap)
	}
	for _, h := range []string{prod, cheap} {
		if !auth.CheckPassword(h, "password1234") || auth.CheckPassword(h, "password1235") {
			t.Errorf("%q does not check as it should", h)
		}
	}
	if !auth.NeedsRehash(prod) || auth.NeedsRehash(cheap) {
		t.Errorf("NeedsRehash: production %v, cheap %v; want true, false", auth.NeedsRehash(prod), auth.NeedsRehash(cheap))
	}
}
