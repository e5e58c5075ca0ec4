package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// DeviceCheck is what every authenticated request needs to know about its
// token's device and user: read in one transaction.
type DeviceCheck struct {
	Device *Device
	User   *User
}

// CheckDevice loads the token's device and user, and refuses a device that
// is revoked, unknown, or not the user's, and a disabled user.
func (s *Store) CheckDevice(actor syncproto.Actor) (DeviceCheck, error) {
	var out DeviceCheck
	err := s.db.View(func(tx *bolt.Tx) error {
		dev, err := s.activeDevice(tx, actor)
		if err != nil {
			return err
		}
		u, ok := loadUser(tx, actor.UserID)
		if !ok || !u.Active {
			return syncproto.Errorf(syncproto.CodeUnauthorized, "this account is disabled")
		}
		out = DeviceCheck{Device: dev, User: u}
		return nil
	})
	return out, err
}

// Login registers deviceID to the user on first use and stores a new refresh
// token hash for it. A device that belongs to another user is forbidden; a
// revoked device is device_revoked.
func (s *Store) Login(ctx context.Context, u *User, deviceID, name, platform string, refreshHash [32]byte, refreshTTL time.Duration) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		devices := tx.Bucket(bucketDevices)
		var dev Device
		found, err := get(devices, []byte(deviceID), &dev)
		if err != nil {
			return err
		}
		switch {
		case found && dev.UserID != u.ID:
			return syncproto.Errorf(syncproto.CodeForbidden, "this device belongs to another user")
		case found && dev.Revoked:
			return syncproto.Errorf(syncproto.CodeDeviceRevoked, "this device may no longer sync").With("wipe", dev.Wipe)
		case !found:
			dev = Device{ID: deviceID, UserID: u.ID, Created: s.now().UTC()}
		}
		dev.Name, dev.Platform = name, platform
		if err := put(devices, []byte(deviceID), &dev); err != nil {
			return err
		}
		rt := RefreshToken{DeviceID: deviceID, UserID: u.ID, Gen: dev.RefreshGen, Expires: s.now().Add(refreshTTL).UTC()}
		return put(tx.Bucket(bucketRefresh), refreshHash[:], &rt)
	})
}

// ErrRefreshReused is what Refresh returns when a spent refresh token comes
// back: a variable, so the app can count reuse apart from other failures.
var ErrRefreshReused = syncproto.Errorf(syncproto.CodeUnauthorized, "this refresh token was already used; every session of this device is ended, log in again")

// Refresh spends the refresh token with hash old and stores its successor,
// next. graced reports a grace retry (below).
//
// A token that was already spent means it was stolen or replayed: the
// device's whole chain is revoked and the caller gets ErrRefreshReused.
// One exception keeps a client whose answer was lost signed in: the token
// presented again within grace of being spent, while its successor is
// still unused, is a retry. It gets next as a new successor, and the
// unused one it replaces is retired (spent, so presenting it later ends
// the chain like any reuse): the client holds one live token at a time,
// and a thief and the owner cannot both go on with a copy of the chain.
// Only the token just before the live one gets grace: once its successor
// is used, or the window has passed, its return ends the chain.
func (s *Store) Refresh(ctx context.Context, old [32]byte, deviceID string, next [32]byte, refreshTTL, grace time.Duration) (user *User, graced bool, err error) {
	reuse := false
	err = s.write(ctx, func(tx *bolt.Tx) error {
		refresh := tx.Bucket(bucketRefresh)
		var rt RefreshToken
		found, err := get(refresh, old[:], &rt)
		if err != nil {
			return err
		}
		if !found || subtle.ConstantTimeCompare([]byte(rt.DeviceID), []byte(deviceID)) != 1 {
			return syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token is not valid; log in again")
		}
		devices := tx.Bucket(bucketDevices)
		var dev Device
		if found, err := get(devices, []byte(deviceID), &dev); err != nil {
			return err
		} else if !found {
			return syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token is not valid; log in again")
		}
		if dev.Revoked {
			return syncproto.Errorf(syncproto.CodeDeviceRevoked, "this device may no longer sync").With("wipe", dev.Wipe)
		}
		now := s.now()
		var successor RefreshToken
		if rt.Used && rt.Gen == dev.RefreshGen {
			ok, err := inGrace(refresh, &rt, &successor, now, grace)
			if err != nil {
				return err
			}
			if !ok {
				// Reuse: end the chain. This write is what the caller
				// must see committed, so it is not a protocol error here.
				reuse = true
				dev.RefreshGen++
				return put(devices, []byte(deviceID), &dev)
			}
			graced = true
		} else if rt.Used || rt.Gen != dev.RefreshGen || now.After(rt.Expires) {
			return syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token has expired or was revoked; log in again")
		}
		u, ok := loadUser(tx, rt.UserID)
		if !ok || !u.Active {
			return syncproto.Errorf(syncproto.CodeUnauthorized, "this account is disabled")
		}
		if graced {
			// Retire the successor whose answer was lost. Its window
			// stays where the first spend put it, so retries cannot
			// stretch it.
			retired := rt.Next
			successor.Used, successor.UsedAt = true, now.UTC()
			if err := put(refresh, retired, &successor); err != nil {
				return err
			}
		} else {
			rt.Used, rt.UsedAt = true, now.UTC()
		}
		rt.Next = next[:]
		if err := put(refresh, old[:], &rt); err != nil {
			return err
		}
		nt := RefreshToken{DeviceID: deviceID, UserID: u.ID, Gen: dev.RefreshGen, Expires: now.Add(refreshTTL).UTC()}
		if err := put(refresh, next[:], &nt); err != nil {
			return err
		}
		user = u
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if reuse {
		return nil, false, ErrRefreshReused
	}
	return user, graced, nil
}

// inGrace reports whether rt, a spent token of the device's live chain,
// may be presented again: grace is on, it was spent within grace of now,
// and its successor (loaded into successor) is of the same chain, unused
// and unexpired. A record written before the grace existed has no
// successor recorded, and a retired successor has none either.
func inGrace(refresh *bolt.Bucket, rt, successor *RefreshToken, now time.Time, grace time.Duration) (bool, error) {
	if grace <= 0 || len(rt.Next) != sha256.Size || rt.UsedAt.IsZero() || now.After(rt.UsedAt.Add(grace)) {
		return false, nil
	}
	found, err := get(refresh, rt.Next, successor)
	if err != nil || !found {
		return false, err
	}
	return !successor.Used && successor.Gen == rt.Gen && successor.DeviceID == rt.DeviceID && !now.After(successor.Expires), nil
}

// Logout ends a device's refresh chain.
func (s *Store) Logout(ctx context.Context, deviceID string) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		devices := tx.Bucket(bucketDevices)
		var dev Device
		found, err := get(devices, []byte(deviceID), &dev)
		if err != nil || !found {
			return err
		}
		dev.RefreshGen++
		return put(devices, []byte(deviceID), &dev)
	})
}

// RevokeDevice stops a device from syncing; with wipe, its next request tells
// it to delete its local data. Only admins whose unit holds the device's user
// may do it.
func (s *Store) RevokeDevice(ctx context.Context, actor syncproto.Actor, deviceID string, wipe bool) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		devices := tx.Bucket(bucketDevices)
		var dev Device
		found, err := get(devices, []byte(deviceID), &dev)
		if err != nil {
			return err
		}
		if !found {
			return syncproto.Errorf(syncproto.CodeNotFound, "no device %s", deviceID)
		}
		owner, ok := loadUser(tx, dev.UserID)
		if !ok || !syncproto.InScope(actor.Unit, owner.Unit) {
			return syncproto.Errorf(syncproto.CodeNotFound, "no device %s", deviceID)
		}
		dev.Revoked, dev.Wipe = true, wipe
		dev.RefreshGen++
		return put(devices, []byte(deviceID), &dev)
	})
}

// SigningKeys returns every stored key and the active kid, creating the
// first key with makeKey when there is none.
func (s *Store) SigningKeys(ctx context.Context, makeKey func() (SigningKey, error)) ([]SigningKey, string, error) {
	keys, active, err := s.readKeys()
	if err != nil || len(keys) > 0 {
		return keys, active, err
	}
	k, err := makeKey()
	if err != nil {
		return nil, "", err
	}
	if err := s.AddSigningKey(ctx, k, true); err != nil {
		return nil, "", err
	}
	return s.readKeys()
}

// AddSigningKey stores a key, making it the active one when active is set.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey, active bool) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		if err := put(tx.Bucket(bucketKeys), []byte(k.ID), &k); err != nil {
			return err
		}
		if active {
			return tx.Bucket(bucketMeta).Put(keyActiveKID, []byte(k.ID))
		}
		return nil
	})
}

func (s *Store) readKeys() ([]SigningKey, string, error) {
	var keys []SigningKey
	var active string
	err := s.db.View(func(tx *bolt.Tx) error {
		active = string(tx.Bucket(bucketMeta).Get(keyActiveKID))
		return tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
			var k SigningKey
			if err := decode(v, &k); err != nil {
				return err
			}
			keys = append(keys, k)
			return nil
		})
	})
	return keys, active, err
}
