package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// RefreshTokenBytes is the entropy of a refresh token; encoded it is 43
// base64url characters.
const RefreshTokenBytes = 32

// NewRefreshToken returns a fresh refresh token (RefreshTokenBytes random
// bytes, base64url without padding) for the client, and its SHA-256, which
// is all the store keeps.
func NewRefreshToken() (token string, hash [32]byte, err error) {
	b := make([]byte, RefreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", hash, fmt.Errorf("auth: new refresh token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashRefreshToken(token), nil
}

// HashRefreshToken returns the SHA-256 of a presented refresh token, the key
// the store looks it up by. A preimage-resistant hash is enough (no salt, no
// slow hash): the token has 256 bits of entropy, so it cannot be guessed
// from its hash. The store compares hashes by exact key look-up, which
// leaks nothing useful through timing.
func HashRefreshToken(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}
