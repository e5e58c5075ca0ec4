package app

import (
	"context"
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
	// The store's commit has made the issuer follow it (followKeys), on
	// this node and, through the log, on every other node of a cluster.
	if kid := a.issuer.ActiveKID(); kid != key.ID {
		return nil, fmt.Errorf("rotate signing key: the server still signs with %s, not the new key %s; a restart puts it right", kid, key.ID)
	}
	a.log.Info("signing key rotated", "kid", rot.KID, "verifying", rot.Verifying, "removed", rot.Removed)
	return rot, nil
}

// followKeys makes the issuer hold the signing keys the store holds, and
// sign with its active one, after a commit changed them (a rotation here,
// or on another node of a cluster, applied from the log). A cached token is
// one verified before: every token proves itself again against the new set.
// A failure is logged: the keys in the store are whole (they were just
// committed), so it can only be a key the issuer refuses, which a restart
// would refuse as well.
func (a *App) followKeys() {
	stored, active, err := a.store.ListSigningKeys()
	if err == nil {
		err = a.issuer.Replace(authKeys(stored), active)
	}
	if err != nil {
		a.log.Error("follow the stored signing keys", "err", err)
		return
	}
	a.tokens.clear()
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
