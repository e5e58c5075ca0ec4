package store

import (
	"context"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ListSigningKeys returns every stored signing key, oldest first, and the
// active kid.
func (s *Store) ListSigningKeys() ([]SigningKey, string, error) {
	keys, active, err := s.readKeys()
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(keys, func(a, b SigningKey) int { return a.Created.Compare(b.Created) })
	return keys, active, nil
}

// RotateSigningKey makes next the active signing key, marks the key it
// replaces retired at now, and deletes the keys that were retired before
// retiredBefore, in one transaction. It returns the kids deleted. The
// active key and keys never retired are never deleted.
func (s *Store) RotateSigningKey(ctx context.Context, next SigningKey, now, retiredBefore time.Time) (deleted []string, err error) {
	return submit[[]string](ctx, s, &rotateKeyCmd{Next: next, Now: now, RetiredBefore: retiredBefore})
}

// rotateKeyCmd makes Next the active key at Now and deletes the keys
// retired before RetiredBefore.
type rotateKeyCmd struct {
	Next          SigningKey `json:"next"`
	Now           time.Time  `json:"now"`
	RetiredBefore time.Time  `json:"retired_before"`
}

func (*rotateKeyCmd) kind() cmdKind { return cmdRotateSigningKey }

func (c *rotateKeyCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	keys, meta := tx.Bucket(schema.BucketKeys), tx.Bucket(schema.BucketMeta)
	if keys.Get([]byte(c.Next.ID)) != nil {
		// Checked before anything is written, so a protocol error
		// fails this request alone, not its group commit.
		return nil, syncproto.Errorf(syncproto.CodeUnavailable, "the new signing key's id is taken; rotate again")
	}
	if prev := meta.Get(schema.KeyActiveKID); prev != nil {
		var k SigningKey
		found, err := get(keys, prev, &k)
		if err != nil {
			return nil, err
		}
		if found {
			k.Retired = c.Now.UTC()
			if err := put(keys, prev, &k); err != nil {
				return nil, err
			}
		}
	}
	var drop [][]byte
	err := forEachRecord(keys, func(kid []byte, k *SigningKey) error {
		if !k.Retired.IsZero() && k.Retired.Before(c.RetiredBefore) {
			drop = append(drop, kid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, kid := range drop {
		if err := keys.Delete(kid); err != nil {
			return nil, err
		}
		deleted = append(deleted, string(kid))
	}
	if err := put(keys, []byte(c.Next.ID), &c.Next); err != nil {
		return nil, err
	}
	s.afterCommit = append(s.afterCommit, s.signingKeysChanged)
	return deleted, meta.Put(schema.KeyActiveKID, []byte(c.Next.ID))
}
