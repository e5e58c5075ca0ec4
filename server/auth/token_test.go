package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// t0 is the tests' starting time; whole seconds, as JWT times are.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// MustNewKey makes a signing key or fails the test.
func MustNewKey(tb testing.TB) auth.Key {
	tb.Helper()
	k, err := auth.NewKey(t0)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustNewIssuer returns an issuer with one fresh key, on a clock at t0.
func MustNewIssuer(tb testing.TB) (*auth.Issuer, auth.Key, *fakeclock.Clock) {
	tb.Helper()
	clk := fakeclock.At(t0)
	k := MustNewKey(tb)
	iss, err := auth.NewIssuer([]auth.Key{k}, k.ID, 15*time.Minute, clk.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return iss, k, clk
}

// MustIssue issues a token for a village user or fails the test.
func MustIssue(tb testing.TB, iss *auth.Issuer) string {
	tb.Helper()
	tok, _, err := iss.Issue(auth.Claims{UserID: "u-1", Role: "village", Unit: "411002001001", DeviceID: "d-1"})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// goodClaims are the claims of a valid token at now.
func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "u-1",
		"role": "village",
		"unit": "411002001001",
		"dev":  "d-1",
		"iat":  now.Unix(),
		"exp":  now.Add(15 * time.Minute).Unix(),
		"jti":  "0123456789abcdef0123456789abcdef",
	}
}

// sign makes a token with the jwt library: any method, any key, kid unless
// empty, claims as given.
func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var seg = base64.RawURLEncoding

// handBuilt assembles a token from a header, claims and raw signature, for
// what the library will not sign.
func handBuilt(tb testing.TB, header map[string]any, claims jwt.MapClaims, sig []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return seg.EncodeToString(h) + "." + seg.EncodeToString(c) + "." + seg.EncodeToString(sig)
}

// edSign signs a hand-built header and claims with Ed25519.
func edSign(tb testing.TB, priv ed25519.PrivateKey, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	unsigned := handBuilt(tb, header, claims, nil)
	unsigned = strings.TrimSuffix(unsigned, ".")
	return unsigned + "." + seg.EncodeToString(ed25519.Sign(priv, []byte(unsigned)))
}

// mustCode fails the test unless err is a *syncproto.Error with code want.
func mustCode(tb testing.TB, err error, want string) *syncproto.Error {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want %s", want)
	}
	var e *syncproto.Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %T %v, want *syncproto.Error", err, err)
	}
	if e.Code != want {
		tb.Fatalf("code = %s (%s), want %s", e.Code, e.Message, want)
	}
	if e.Message == "" {
		tb.Fatal("empty message")
	}
	return e
}

func TestIssuer_Verify_Attacks(t *testing.T) {
	iss, key, _ := MustNewIssuer(t)
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edHeader := func() map[string]any { return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": key.ID} }
	// withClaims signs the good claims, changed by edit, with the right
	// key; withHeader signs them under the good header changed by edit.
	withClaims := func(edit func(c jwt.MapClaims)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := goodClaims(t0)
			edit(c)
			return sign(t, jwt.SigningMethodEdDSA, key.Private, key.ID, c)
		}
	}
	withHeader := func(edit func(h map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			h := edHeader()
			edit(h)
			return edSign(t, key.Private, h, goodClaims(t0))
		}
	}

	tests := []struct {
		name  string
		token func(t *testing.T) string
		at    time.Time // verifier's clock; t0 if zero
		want  string
	}{
		{"AlgNone", func(t *testing.T) string {
			return handBuilt(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, goodClaims(t0), nil)
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"AlgNoneLibrary", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.ID, goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"AlgNoneSignedBytes", func(t *testing.T) string {
			// alg none with a real Ed25519 signature attached.
			h := edHeader()
			h["alg"] = "none"
			return edSign(t, key.Private, h, goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"AlgLowercase", withHeader(func(h map[string]any) { h["alg"] = "eddsa" }), time.Time{}, syncproto.CodeUnauthorized},
		{"AlgMissing", withHeader(func(h map[string]any) { delete(h, "alg") }), time.Time{}, syncproto.CodeUnauthorized},
		{"HS256WithPublicKeyAsSecret", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte(key.Public()), key.ID, goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"HS256WithPrivateKeyAsSecret", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte(key.Private), key.ID, goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"RS256Header", func(t *testing.T) string {
			sig := make([]byte, 256)
			if _, err := rand.Read(sig); err != nil {
				t.Fatal(err)
			}
			return handBuilt(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": key.ID}, goodClaims(t0), sig)
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"UnknownAlg", func(t *testing.T) string {
			return handBuilt(t, map[string]any{"alg": "XX999", "kid": key.ID}, goodClaims(t0), []byte("sig"))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"MissingExp", withClaims(func(c jwt.MapClaims) { delete(c, "exp") }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingExpLongAfter", withClaims(func(c jwt.MapClaims) { delete(c, "exp") }), t0.Add(1000 * time.Hour), syncproto.CodeUnauthorized},
		{"MissingKid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodEdDSA, key.Private, "", goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"KidNotString", withHeader(func(h map[string]any) { h["kid"] = 7 }), time.Time{}, syncproto.CodeUnauthorized},
		{"UnknownKid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodEdDSA, key.Private, "ffffffffffffffff", goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"CritHeader", withHeader(func(h map[string]any) { h["crit"] = []string{"exp"} }), time.Time{}, syncproto.CodeUnauthorized},
		{"Expired", func(t *testing.T) string {
			return MustIssue(t, iss)
		}, t0.Add(16 * time.Minute), syncproto.CodeTokenExpired},
		{"ExpiredExactlyAtExp", func(t *testing.T) string {
			return MustIssue(t, iss)
		}, t0.Add(15 * time.Minute), syncproto.CodeTokenExpired},
		{"ExpiredAndBadSignature", func(t *testing.T) string {
			// An expired token that is not ours is not "expired": refreshing
			// would not help whoever forged it.
			return sign(t, jwt.SigningMethodEdDSA, otherPriv, key.ID, goodClaims(t0))
		}, t0.Add(time.Hour), syncproto.CodeUnauthorized},
		{"ExpiredAndMissingSub", withClaims(func(c jwt.MapClaims) { delete(c, "sub") }), t0.Add(time.Hour), syncproto.CodeUnauthorized},
		{"IatInFuture", func(t *testing.T) string {
			c := goodClaims(t0.Add(2 * time.Minute))
			return sign(t, jwt.SigningMethodEdDSA, key.Private, key.ID, c)
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"NbfInFuture", withClaims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingIat", withClaims(func(c jwt.MapClaims) { delete(c, "iat") }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingSub", withClaims(func(c jwt.MapClaims) { delete(c, "sub") }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingDev", withClaims(func(c jwt.MapClaims) { delete(c, "dev") }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingRole", withClaims(func(c jwt.MapClaims) { delete(c, "role") }), time.Time{}, syncproto.CodeUnauthorized},
		{"UnknownRole", withClaims(func(c jwt.MapClaims) { c["role"] = "superuser" }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingUnit", withClaims(func(c jwt.MapClaims) { delete(c, "unit") }), time.Time{}, syncproto.CodeUnauthorized},
		{"MissingJti", withClaims(func(c jwt.MapClaims) { delete(c, "jti") }), time.Time{}, syncproto.CodeUnauthorized},
		{"AdmWrongType", withClaims(func(c jwt.MapClaims) { c["adm"] = "true" }), time.Time{}, syncproto.CodeUnauthorized},
		{"ExpWrongType", withClaims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), time.Time{}, syncproto.CodeUnauthorized},
		{"TamperedPayload", func(t *testing.T) string {
			parts := strings.Split(MustIssue(t, iss), ".")
			raw, err := seg.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			c["role"] = "center"
			c["unit"] = "4110"
			c["adm"] = true
			raw, _ = json.Marshal(c)
			parts[1] = seg.EncodeToString(raw)
			return strings.Join(parts, ".")
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"TamperedHeaderKidSwap", func(t *testing.T) string {
			// A valid signature over header+payload does not survive a
			// header edit, even one that keeps the key.
			parts := strings.Split(MustIssue(t, iss), ".")
			h, _ := json.Marshal(map[string]any{"alg": "EdDSA", "kid": key.ID})
			parts[0] = seg.EncodeToString(h)
			return strings.Join(parts, ".")
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"TamperedSignature", func(t *testing.T) string {
			parts := strings.Split(MustIssue(t, iss), ".")
			sig, err := seg.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			sig[10] ^= 0x01
			parts[2] = seg.EncodeToString(sig)
			return strings.Join(parts, ".")
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"TruncatedSignature", func(t *testing.T) string {
			tok := MustIssue(t, iss)
			return tok[:len(tok)-4]
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"EmptySignature", func(t *testing.T) string {
			parts := strings.Split(MustIssue(t, iss), ".")
			return parts[0] + "." + parts[1] + "."
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"PaddedSegment", func(t *testing.T) string {
			parts := strings.Split(MustIssue(t, iss), ".")
			return parts[0] + "." + parts[1] + "." + base64.URLEncoding.EncodeToString(mustDecode(t, parts[2]))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"WrongKeyKnownKid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodEdDSA, otherPriv, key.ID, goodClaims(t0))
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"Empty", func(t *testing.T) string { return "" }, time.Time{}, syncproto.CodeUnauthorized},
		{"Garbage", func(t *testing.T) string { return "not a token at all" }, time.Time{}, syncproto.CodeUnauthorized},
		{"GarbageThreeDots", func(t *testing.T) string { return "a.b.c" }, time.Time{}, syncproto.CodeUnauthorized},
		{"FourSegments", func(t *testing.T) string { return MustIssue(t, iss) + ".x" }, time.Time{}, syncproto.CodeUnauthorized},
		{"BearerPrefixLeftIn", func(t *testing.T) string { return "Bearer " + MustIssue(t, iss) }, time.Time{}, syncproto.CodeUnauthorized},
		{"HeaderNotJSON", func(t *testing.T) string {
			parts := strings.Split(MustIssue(t, iss), ".")
			parts[0] = seg.EncodeToString([]byte("{not json"))
			return strings.Join(parts, ".")
		}, time.Time{}, syncproto.CodeUnauthorized},
		{"Huge8KiB", withClaims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 8<<10) }), time.Time{}, syncproto.CodeUnauthorized},
		{"JustOverLimit", func(t *testing.T) string {
			return strings.Repeat("a", auth.MaxTokenBytes+1)
		}, time.Time{}, syncproto.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			at := tt.at
			if at.IsZero() {
				at = t0
			}
			iss2 := withClock(t, key, at)
			c, err := iss2.Verify(tok)
			e := mustCode(t, err, tt.want)
			t.Logf("%s: %s", e.Code, e.Message)
			if c != (auth.Claims{}) {
				t.Errorf("claims = %+v on error, want zero", c)
			}
			if len(tok) >= 8 && strings.Contains(e.Message, tok) {
				t.Errorf("message echoes the token: %q", e.Message)
			}
			for _, part := range strings.Split(tok, ".") {
				if len(part) >= 8 && strings.Contains(e.Message, part) {
					t.Errorf("message echoes part of the token: %q", e.Message)
				}
			}
		})
	}
}

// withClock returns an issuer holding key whose clock reads at.
func withClock(tb testing.TB, key auth.Key, at time.Time) *auth.Issuer {
	tb.Helper()
	iss, err := auth.NewIssuer([]auth.Key{key}, key.ID, 15*time.Minute, func() time.Time { return at })
	if err != nil {
		tb.Fatal(err)
	}
	return iss
}

func mustDecode(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := seg.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestIssuer_Issue(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		iss, key, clk := MustNewIssuer(t)
		clk.Set(t0.Add(700 * time.Millisecond))
		in := auth.Claims{UserID: "u-42", Role: "township", Unit: "411002001", DeviceID: "0190d7a4-5b6c-7def-8123-456789abcdef", Admin: true, Session: 1<<32 + 7}
		tok, expiresIn, err := iss.Issue(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) > 600 {
			t.Errorf("token is %d bytes; expected a few hundred", len(tok))
		}
		if want := 15*time.Minute - 700*time.Millisecond; expiresIn != want {
			t.Errorf("expiresIn = %v, want %v", expiresIn, want)
		}
		got, err := iss.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != in.UserID || got.Role != in.Role || got.Unit != in.Unit || got.DeviceID != in.DeviceID || !got.Admin || got.Session != in.Session {
			t.Errorf("claims = %+v, want those of %+v", got, in)
		}
		if !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(15*time.Minute)) {
			t.Errorf("iat, exp = %v, %v", got.IssuedAt, got.ExpiresAt)
		}
		if len(got.ID) != 32 {
			t.Errorf("jti = %q, want 32 hex digits", got.ID)
		}
		if a := got.Actor(); a != (syncproto.Actor{UserID: "u-42", Role: "township", Unit: "411002001", DeviceID: in.DeviceID, Session: in.Session}) {
			t.Errorf("actor = %+v", a)
		}

		h := map[string]any{}
		if err := json.Unmarshal(mustDecode(t, strings.Split(tok, ".")[0]), &h); err != nil {
			t.Fatal(err)
		}
		if h["alg"] != "EdDSA" || h["kid"] != key.ID {
			t.Errorf("header = %v", h)
		}
		c := map[string]any{}
		if err := json.Unmarshal(mustDecode(t, strings.Split(tok, ".")[1]), &c); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"sub", "role", "unit", "dev", "adm", "iat", "exp", "jti"} {
			if _, ok := c[name]; !ok {
				t.Errorf("claim %s missing from %v", name, c)
			}
		}
	})

	t.Run("NotAdminOmitsAdm", func(t *testing.T) {
		iss, _, _ := MustNewIssuer(t)
		tok := MustIssue(t, iss)
		c := map[string]any{}
		if err := json.Unmarshal(mustDecode(t, strings.Split(tok, ".")[1]), &c); err != nil {
			t.Fatal(err)
		}
		if _, ok := c["adm"]; ok {
			t.Errorf("adm present for a non-admin: %v", c)
		}
		got, err := iss.Verify(tok)
		if err != nil || got.Admin {
			t.Fatalf("Verify = %+v, %v", got, err)
		}
	})

	t.Run("UniqueJTI", func(t *testing.T) {
		iss, _, _ := MustNewIssuer(t)
		seen := map[string]bool{}
		for range 50 {
			c, err := iss.Verify(MustIssue(t, iss))
			if err != nil {
				t.Fatal(err)
			}
			if seen[c.ID] {
				t.Fatalf("jti %s repeated", c.ID)
			}
			seen[c.ID] = true
		}
	})

	t.Run("ValidUntilExp", func(t *testing.T) {
		iss, _, clk := MustNewIssuer(t)
		tok := MustIssue(t, iss)
		clk.Set(t0.Add(15*time.Minute - time.Nanosecond))
		if _, err := iss.Verify(tok); err != nil {
			t.Fatalf("just before exp: %v", err)
		}
		clk.Set(t0.Add(15 * time.Minute))
		mustCode(t, verifyErr(iss, tok), syncproto.CodeTokenExpired)
	})

	t.Run("IatWithinSkew", func(t *testing.T) {
		// Another server whose clock runs 30 s ahead issued it.
		iss, key, _ := MustNewIssuer(t)
		tok := sign(t, jwt.SigningMethodEdDSA, key.Private, key.ID, goodClaims(t0.Add(30*time.Second)))
		if _, err := iss.Verify(tok); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RefusesIncompleteClaims", func(t *testing.T) {
		iss, _, _ := MustNewIssuer(t)
		good := auth.Claims{UserID: "u", Role: "village", Unit: "411002001001", DeviceID: "d"}
		for name, mutate := range map[string]func(*auth.Claims){
			"NoUser":   func(c *auth.Claims) { c.UserID = "" },
			"NoDevice": func(c *auth.Claims) { c.DeviceID = "" },
			"NoUnit":   func(c *auth.Claims) { c.Unit = "" },
			"BadRole":  func(c *auth.Claims) { c.Role = "root" },
		} {
			c := good
			mutate(&c)
			if _, _, err := iss.Issue(c); err == nil {
				t.Errorf("%s: Issue succeeded", name)
			}
		}
	})

	t.Run("DefaultTTL", func(t *testing.T) {
		k := MustNewKey(t)
		iss, err := auth.NewIssuer([]auth.Key{k}, k.ID, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if iss.TTL() != auth.DefaultAccessTTL {
			t.Fatalf("TTL = %v", iss.TTL())
		}
		if _, err := iss.Verify(MustIssue(t, iss)); err != nil {
			t.Fatal(err)
		}
	})
}

func verifyErr(iss *auth.Issuer, tok string) error {
	_, err := iss.Verify(tok)
	return err
}

func TestIssuer_Rotation(t *testing.T) {
	iss, oldKey, clk := MustNewIssuer(t)
	oldTok := MustIssue(t, iss)

	newKey := MustNewKey(t)
	if err := iss.SetActive(newKey.ID); err == nil {
		t.Fatal("SetActive of a key not yet added succeeded")
	}
	if err := iss.AddKey(newKey); err != nil {
		t.Fatal(err)
	}
	if err := iss.AddKey(newKey); err != nil {
		t.Fatalf("adding the same key twice: %v", err)
	}
	if iss.ActiveKID() != oldKey.ID {
		t.Fatal("AddKey changed the active key")
	}
	if err := iss.SetActive(newKey.ID); err != nil {
		t.Fatal(err)
	}
	if iss.ActiveKID() != newKey.ID {
		t.Fatalf("ActiveKID = %s, want %s", iss.ActiveKID(), newKey.ID)
	}

	clk.Set(t0.Add(time.Minute))
	if _, err := iss.Verify(oldTok); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
	newTok := MustIssue(t, iss)
	if kid := tokenKID(t, newTok); kid != newKey.ID {
		t.Fatalf("new token kid = %s, want %s", kid, newKey.ID)
	}
	if _, err := iss.Verify(newTok); err != nil {
		t.Fatal(err)
	}

	// An issuer that has only the old key cannot verify the new token.
	oldOnly, err := auth.NewIssuer([]auth.Key{oldKey}, oldKey.ID, 0, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, verifyErr(oldOnly, newTok), syncproto.CodeUnauthorized)

	if err := iss.RemoveKey(newKey.ID); err == nil {
		t.Fatal("removing the active key succeeded")
	}
	if err := iss.RemoveKey(oldKey.ID); err != nil {
		t.Fatal(err)
	}
	mustCode(t, verifyErr(iss, oldTok), syncproto.CodeUnauthorized)
	if _, err := iss.Verify(newTok); err != nil {
		t.Fatal(err)
	}

	t.Run("SameIDOtherKey", func(t *testing.T) {
		imposter := MustNewKey(t)
		imposter.ID = newKey.ID
		if err := iss.AddKey(imposter); err == nil {
			t.Fatal("AddKey replaced a key under the same id")
		}
	})

	t.Run("IssuerCopiesKey", func(t *testing.T) {
		k := MustNewKey(t)
		iss, err := auth.NewIssuer([]auth.Key{k}, k.ID, 0, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		tok := MustIssue(t, iss)
		clear(k.Private) // the caller scribbles over its slice
		if _, err := iss.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if _, err := iss.Verify(MustIssue(t, iss)); err != nil {
			t.Fatal(err)
		}
	})
}

func tokenKID(tb testing.TB, tok string) string {
	tb.Helper()
	h := map[string]any{}
	if err := json.Unmarshal(mustDecode(tb, strings.Split(tok, ".")[0]), &h); err != nil {
		tb.Fatal(err)
	}
	kid, _ := h["kid"].(string)
	return kid
}

func TestNewIssuer_Errors(t *testing.T) {
	k1, k2 := MustNewKey(t), MustNewKey(t)
	dup := k2
	dup.ID = k1.ID
	short := k1
	short.Private = short.Private[:32]
	mangled := MustNewKey(t)
	mangled.Private = append(ed25519.PrivateKey(nil), mangled.Private...)
	mangled.Private[40] ^= 1 // public half no longer matches the seed
	for name, tc := range map[string]struct {
		keys   []auth.Key
		active string
	}{
		"NoKeys":         {nil, ""},
		"UnknownActive":  {[]auth.Key{k1}, k2.ID},
		"DuplicateID":    {[]auth.Key{k1, dup}, k1.ID},
		"ShortKey":       {[]auth.Key{short}, k1.ID},
		"MismatchedHalf": {[]auth.Key{mangled}, mangled.ID},
		"EmptyID":        {[]auth.Key{{Private: k1.Private}}, ""},
		"IDWithSpace":    {[]auth.Key{{ID: "a b", Private: k1.Private}}, "a b"},
	} {
		if _, err := auth.NewIssuer(tc.keys, tc.active, 0, nil); err == nil {
			t.Errorf("%s: NewIssuer succeeded", name)
		}
	}
	if _, err := auth.NewIssuer([]auth.Key{k1, k2}, k2.ID, 0, nil); err != nil {
		t.Fatal(err)
	}
}

// TestIssuer_Concurrent runs Issue, Verify and rotation at once; run it with
// -race.
func TestIssuer_Concurrent(t *testing.T) {
	iss, _, _ := MustNewIssuer(t)
	keys := []auth.Key{MustNewKey(t), MustNewKey(t), MustNewKey(t)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				tok, _, err := iss.Issue(auth.Claims{UserID: "u", Role: "county", Unit: "411002", DeviceID: "d"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := iss.Verify(tok); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, k := range keys {
			if err := iss.AddKey(k); err != nil {
				t.Error(err)
				return
			}
			if err := iss.SetActive(k.ID); err != nil {
				t.Error(err)
				return
			}
			_ = iss.ActiveKID()
		}
	}()
	wg.Wait()
}

func FuzzIssuer_Verify(f *testing.F) {
	iss, key, _ := MustNewIssuer(f)
	good := MustIssue(f, iss)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(key.Public()), key.ID, goodClaims(t0)))
	f.Add(handBuilt(f, map[string]any{"alg": "none", "kid": key.ID}, goodClaims(t0), nil))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := iss.Verify(tok)
		if err == nil {
			// Only a token we signed verifies; ours differ from good only
			// in how they might be re-encoded, which strict decoding forbids.
			if tok != good {
				t.Fatalf("accepted a token we did not issue: %q -> %+v", tok, c)
			}
			return
		}
		code := syncproto.ErrorCode(err)
		if code != syncproto.CodeUnauthorized && code != syncproto.CodeTokenExpired {
			t.Fatalf("code %s", code)
		}
	})
}

func BenchmarkIssuer_Verify(b *testing.B) {
	iss, _, _ := MustNewIssuer(b)
	tok := MustIssue(b, iss)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssuer_Issue(b *testing.B) {
	iss, _, _ := MustNewIssuer(b)
	c := auth.Claims{UserID: "u-1", Role: "village", Unit: "411002001001", DeviceID: "d-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIssuer_Verify_CopiedKey: someone holding a copy of a signing key (an
// old backup, a copied data directory) can sign what they like. What this
// server never makes is refused: a token living longer than the TTL, and a
// token of a retired key signed after it retired.
func TestIssuer_Verify_CopiedKey(t *testing.T) {
	iss, old, clk := MustNewIssuer(t)
	honest := MustIssue(t, iss)

	year := goodClaims(t0)
	year["exp"] = t0.Add(365 * 24 * time.Hour).Unix()
	_, err := iss.Verify(sign(t, jwt.SigningMethodEdDSA, old.Private, old.ID, year))
	mustCode(t, err, syncproto.CodeTokenExpired)

	// A rotation: the new key signs, the old one only verifies what it
	// signed before.
	clk.Set(t0.Add(5 * time.Minute))
	next := MustNewKey(t)
	if err := iss.AddKey(next); err != nil {
		t.Fatal(err)
	}
	if err := iss.SetActive(next.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(honest); err != nil {
		t.Fatalf("a token the old key signed before the rotation: %v", err)
	}
	forged := goodClaims(t0.Add(9 * time.Minute))
	_, err = iss.Verify(sign(t, jwt.SigningMethodEdDSA, old.Private, old.ID, forged))
	mustCode(t, err, syncproto.CodeUnauthorized)
	// Backdated to before the rotation, a forgery can live no longer than
	// an honest token of that time.
	backdated := goodClaims(t0.Add(4 * time.Minute))
	if _, err := iss.Verify(sign(t, jwt.SigningMethodEdDSA, old.Private, old.ID, backdated)); err != nil {
		t.Fatalf("a token of the old key dated before its retirement: %v", err)
	}
	clk.Set(t0.Add(20 * time.Minute))
	_, err = iss.Verify(sign(t, jwt.SigningMethodEdDSA, old.Private, old.ID, backdated))
	mustCode(t, err, syncproto.CodeTokenExpired)

	// A retirement survives a restart: the issuer is rebuilt from stored
	// keys carrying their Retired time.
	old.Retired = t0.Add(5 * time.Minute)
	again, err := auth.NewIssuer([]auth.Key{old, next}, next.ID, 15*time.Minute, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(10 * time.Minute))
	_, err = again.Verify(sign(t, jwt.SigningMethodEdDSA, old.Private, old.ID, goodClaims(t0.Add(9*time.Minute))))
	mustCode(t, err, syncproto.CodeUnauthorized)
}
