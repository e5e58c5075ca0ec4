package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/store"
)

// KeyRetentionMargin is how long past the access-token lifetime a retired
// signing key is kept before a rotation deletes it. Every token a key
// signed has expired one lifetime after the key retired; the margin covers
// clocks that differ and an --access-ttl raised between rotations.
const KeyRetentionMargin = time.Hour

// KeyRotation is what a signing-key rotation did.
type KeyRotation struct {
	// KID is the new key's id: it signs every token from now on.
	KID string `json:"kid"`
	// Verifying are the ids of every key that still verifies tokens, oldest
	// first, the new one last.
	Verifying []string `json:"verifying"`
	// Removed are the keys deleted because every token they signed has
	// expired.
	Removed []string `json:"removed,omitempty"`
}

// RotateKey makes a new signing key sign every new token at once, in the
// store and in the running server; tokens signed by the keys before it keep
// verifying until they expire. Keys retired more than the access-token
// lifetime plus KeyRetentionMargin ago are deleted. Only administrators of
// the root unit may rotate: forbidden for anyone else.
func (a *App) RotateKey(ctx context.Context, p Principal) (*KeyRotation, error) {
	if err := requireRootAdmin(p); err != nil {
		return nil, err
	}
	a.rotating.Lock()
	defer a.rotating.Unlock()
	rot, key, err := rotateKeys(ctx, a.store, a.cfg.AccessTTL)
	if err != nil {
		return nil, err
	}
	// The store already names the new key active, so a failure from here on
	// is put right by a restart; it cannot happen for a key just made.
	if err := a.issuer.AddKey(key); err != nil {
		return nil, fmt.Errorf("rotate signing key: %w", err)
	}
	if err := a.issuer.SetActive(key.ID); err != nil {
		return nil, fmt.Errorf("rotate signing key: %w", err)
	}
	for _, kid := range rot.Removed {
		if err := a.issuer.RemoveKey(kid); err != nil {
			return nil, fmt.Errorf("rotate signing key: %w", err)
		}
	}
	// A cached token is one verified before: let every token prove itself
	// against the key set as it is now.
	a.tokens.clear()
	a.log.Info("signing key rotated", "kid", rot.KID, "verifying", rot.Verifying, "removed", rot.Removed)
	return rot, nil
}

// RotateKeys is RotateKey for a stopped server (`fieldsyncd keys rotate`):
// the next start signs with the new key and verifies with the others.
// accessTTL is the server's access-token lifetime (15 minutes when 0),
// which decides the keys old enough to delete.
func RotateKeys(ctx context.Context, st *store.Store, accessTTL time.Duration) (*KeyRotation, error) {
	rot, _, err := rotateKeys(ctx, st, accessTTL)
	return rot, err
}

func rotateKeys(ctx context.Context, st *store.Store, accessTTL time.Duration) (*KeyRotation, auth.Key, error) {
	if accessTTL <= 0 {
		accessTTL = auth.DefaultAccessTTL
	}
	now := st.Now()
	key, err := auth.NewKey(now)
	if err != nil {
		return nil, auth.Key{}, err
	}
	removed, err := st.RotateSigningKey(ctx, toStored(key), now, now.Add(-(accessTTL + KeyRetentionMargin)))
	if err != nil {
		return nil, auth.Key{}, fmt.Errorf("store signing key: %w", err)
	}
	keys, _, err := st.ListSigningKeys()
	if err != nil {
		return nil, auth.Key{}, fmt.Errorf("list signing keys: %w", err)
	}
	rot := &KeyRotation{KID: key.ID, Removed: removed}
	for _, k := range keys {
		if k.ID != key.ID {
			rot.Verifying = append(rot.Verifying, k.ID)
		}
	}
	rot.Verifying = append(rot.Verifying, key.ID)
	return rot, key, nil
}

// learnKeys adds to the issuer the signing keys the store holds and it
// does not, and reports whether there were any. On a node of a cluster
// the store changes under the app: the founding nodes start together and
// each may make a first key before it sees another's, and a key rotated
// on one node reaches the others through the log. A token signed with a
// key this node has not loaded is checked again once the key is loaded,
// rather than refused until the node restarts. A bad token costs one read
// transaction more.
func (a *App) learnKeys() bool {
	stored, _, err := a.store.ListSigningKeys()
	if err != nil {
		a.log.Warn("list signing keys", "err", err)
		return false
	}
	learned := false
	for _, k := range stored {
		if a.issuer.Has(k.ID) {
			continue
		}
		key := auth.Key{ID: k.ID, Private: ed25519.NewKeyFromSeed(k.Seed), Created: k.Created, Retired: k.Retired}
		if err := a.issuer.AddKey(key); err != nil {
			a.log.Warn("load a signing key made elsewhere", "kid", k.ID, "err", err)
			continue
		}
		learned = true
	}
	return learned
}
