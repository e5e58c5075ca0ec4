package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// MaxKeyIDLen bounds a key id, which travels in every token header.
const MaxKeyIDLen = 64

// Key is an Ed25519 signing key for access tokens. ID is the `kid` that
// tokens signed with it carry in their header.
//
// Key has exported fields only, so the store can encode it with MessagePack
// or JSON as it is (Private becomes a 64-byte binary string). A store that
// prefers to keep only the 32-byte seed uses [Key.Seed] and [KeyFromSeed].
type Key struct {
	ID      string             `json:"id"`
	Private ed25519.PrivateKey `json:"private"`
	Created time.Time          `json:"created"`
	// Retired is when another key took over signing; zero while the key
	// signs or has never signed. A token of a retired key issued after
	// that moment is a forgery made with a copied key.
	Retired time.Time `json:"retired,omitzero"`
}

// NewKey makes a key with a fresh random Ed25519 key pair and a random id of
// 16 hex digits, created at now.
func NewKey(now time.Time) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("auth: generate signing key: %w", err)
	}
	id, err := randomHex(8)
	if err != nil {
		return Key{}, fmt.Errorf("auth: generate key id: %w", err)
	}
	return Key{ID: id, Private: priv, Created: now.UTC()}, nil
}

// KeyFromSeed rebuilds a key from the 32-byte seed that [Key.Seed] returns.
func KeyFromSeed(id string, seed []byte, created time.Time) (Key, error) {
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("auth: key %q: seed is %d bytes, want %d", id, len(seed), ed25519.SeedSize)
	}
	k := Key{ID: id, Private: ed25519.NewKeyFromSeed(seed), Created: created.UTC()}
	if err := k.Validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Seed returns the 32-byte seed the private key derives from; it is all a
// store needs to keep.
func (k Key) Seed() []byte {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Seed()
}

// Public returns the key's public half, or nil if the key is malformed.
func (k Key) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// Validate reports whether k can sign: an id of 1 to [MaxKeyIDLen] printable
// ASCII characters and a well-formed Ed25519 private key whose public half
// matches its seed (a key mangled in storage is refused, not used).
func (k Key) Validate() error {
	if k.ID == "" {
		return errors.New("auth: signing key has no id")
	}
	if len(k.ID) > MaxKeyIDLen {
		return fmt.Errorf("auth: signing key id is %d bytes, at most %d", len(k.ID), MaxKeyIDLen)
	}
	for i := 0; i < len(k.ID); i++ {
		if c := k.ID[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("auth: signing key id %q has a character that is not printable ASCII", k.ID)
		}
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("auth: signing key %q: private key is %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
	}
	derived := ed25519.NewKeyFromSeed(k.Private.Seed())
	if !derived.Equal(k.Private) {
		return fmt.Errorf("auth: signing key %q: public half does not match the seed", k.ID)
	}
	return nil
}

// randomHex returns n random bytes as 2n lowercase hex digits.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
