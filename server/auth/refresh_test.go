package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/fieldsync/fieldsync/server/auth"
)

func TestNewRefreshToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := auth.NewRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q: %d bytes, %v", tok, len(raw), err)
		}
		if len(tok) != 43 {
			t.Fatalf("token is %d characters, want 43", len(tok))
		}
		if hash != sha256.Sum256([]byte(tok)) || hash != auth.HashRefreshToken(tok) {
			t.Fatal("hash is not the token's SHA-256")
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
}

func TestHashRefreshToken(t *testing.T) {
	a, b := auth.HashRefreshToken("a"), auth.HashRefreshToken("b")
	if a == b || a != auth.HashRefreshToken("a") {
		t.Fatal("hash is not a function of the token")
	}
	_ = auth.HashRefreshToken("") // defined, no panic
}
