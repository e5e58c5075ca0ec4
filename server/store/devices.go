package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Device sessions. Every sign-in registers a device (a phone, a browser of
// the console, an admin tool), so a user who signs in again and again, or
// someone who has their password, would leave a device behind each time.
// A user may have at most a few devices signed in at once; a sign-in from
// one more is refused with too_many_devices until one signs out, is
// revoked, or goes unseen for the expiry. A device that signed out and
// never sent an op holds nothing worth keeping: it is forgotten when its
// user signs in from a new device, or by the daily upkeep once it has gone
// unseen for the expiry (ExpireDevices). A device that sent ops keeps its
// record, whose client_seq lets the phone go on where it stopped; a revoked
// one keeps it too, so that it still learns to wipe its data.

// Defaults of Options.MaxDevicesPerUser and Options.DeviceExpiry.
const (
	// DefaultMaxDevicesPerUser leaves room for a cadre's phone and its
	// replacement, and for a lead's phone with console sessions in a few
	// browsers, while a runaway client or an intruder with the password
	// cannot register devices without end.
	DefaultMaxDevicesPerUser = 10
	// DefaultDeviceExpiry is the refresh token's lifetime: a device
	// unseen that long could not refresh any more anyway.
	DefaultDeviceExpiry = 30 * 24 * time.Hour
	// MinDeviceExpiry is the shortest expiry fieldsyncd accepts: a phone
	// a day out of signal must not have to sign in again.
	MinDeviceExpiry = 24 * time.Hour
)

// devicePolicy is Options' sign-in policy with the defaults filled in.
type devicePolicy struct {
	max    int // <= 0: no cap
	expiry time.Duration
}

func newDevicePolicy(maxDevices int, expiry time.Duration) devicePolicy {
	if maxDevices == 0 {
		maxDevices = DefaultMaxDevicesPerUser
	}
	if expiry <= 0 {
		expiry = DefaultDeviceExpiry
	}
	return devicePolicy{max: maxDevices, expiry: expiry}
}

// lastActive is when the device was last heard of: made, signed in,
// refreshed, pushed or pulled.
func (d *Device) lastActive() time.Time {
	t := d.Created
	if d.LastSeen.After(t) {
		t = d.LastSeen
	}
	if d.LastAuth.After(t) {
		t = d.LastAuth
	}
	return t
}

// expired reports whether d has gone unseen for the expiry: it must sign
// in again, and counts as signed out until it does.
func (p devicePolicy) expired(d *Device, now time.Time) bool {
	return now.Sub(d.lastActive()) >= p.expiry
}

// signedIn reports whether d holds a session that can still refresh: not
// revoked, not signed out, not past its refresh token's expiry nor the
// device expiry.
func (p devicePolicy) signedIn(d *Device, now time.Time) bool {
	return !d.Revoked && now.Before(d.SessionEnds) && !p.expired(d, now)
}

// forgettable reports whether d may be deleted: signed out, never sent an
// op, and not revoked.
func (p devicePolicy) forgettable(d *Device, now time.Time) bool {
	return !d.Revoked && d.LastClientSeq == 0 && !p.signedIn(d, now)
}

// sessionFloor is where session numbers start: above every refresh
// generation a store counted before sessions were numbered (one per
// sign-out of a device), so that a device forgotten and made again under
// the same id never takes a number a token of its earlier life carries.
const sessionFloor = 1 << 32

// nextSession returns a session number no device of the store has had:
// the devices bucket's sequence, which only grows.
func nextSession(devices *bolt.Bucket) (uint64, error) {
	if devices.Sequence() < sessionFloor {
		if err := devices.SetSequence(sessionFloor); err != nil {
			return 0, fmt.Errorf("start session numbers: %w", err)
		}
	}
	n, err := devices.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("next session number: %w", err)
	}
	return n, nil
}

// endSession ends d's session at now: its refresh tokens (RefreshGen) and
// its access tokens (Session) stop working. The caller stores d.
func endSession(devices *bolt.Bucket, d *Device, now time.Time) error {
	n, err := nextSession(devices)
	if err != nil {
		return err
	}
	d.RefreshGen++
	d.Session = n
	d.SessionEnds = now.UTC()
	return nil
}

// checkSession refuses an actor whose token belongs to a session of the
// device that has ended. An actor without a session (the server's own
// work, or a token made before sessions were numbered, which expires
// within the access-token lifetime) is not checked.
func checkSession(actor syncproto.Actor, d *Device) error {
	if actor.Session != 0 && actor.Session != d.Session {
		return syncproto.Errorf(syncproto.CodeTokenExpired, "this device's session has ended (signed out, or its refresh token was used twice); sign in again")
	}
	return nil
}

// userDeviceKey is the key of bucket userdevices: user id, "/", device id.
func userDeviceKey(userID, deviceID string) []byte {
	return []byte(userID + "/" + deviceID)
}

// devicesOfUser loads the devices the index lists for userID. A device
// registered before the index existed is not listed until it signs in or
// refreshes; until then it counts as signed out anyway (SessionEnds).
func devicesOfUser(tx *bolt.Tx, userID string) ([]Device, error) {
	prefix := []byte(userID + "/")
	devices := tx.Bucket(schema.BucketDevices)
	var out []Device
	c := tx.Bucket(schema.BucketUserDevices).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		var d Device
		found, err := get(devices, k[len(prefix):], &d)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, d)
		}
	}
	return out, nil
}

// makeRoom is the check of a sign-in that starts a session on deviceID for
// userID: it returns too_many_devices when the user has the most devices
// signed in already, and otherwise the user's devices that may be
// forgotten to keep their number bounded. It writes nothing.
func (s *Store) makeRoom(tx *bolt.Tx, userID, deviceID string, now time.Time) ([]Device, error) {
	if s.devices.max <= 0 {
		return nil, nil
	}
	mine, err := devicesOfUser(tx, userID)
	if err != nil {
		return nil, err
	}
	signedIn := 0
	var forget []Device
	for i := range mine {
		d := &mine[i]
		switch {
		case d.ID == deviceID:
		case s.devices.signedIn(d, now):
			signedIn++
		case s.devices.forgettable(d, now):
			forget = append(forget, *d)
		}
	}
	if signedIn >= s.devices.max {
		return nil, tooManyDevices(s.devices.max)
	}
	return forget, nil
}

// tooManyDevices is the answer to a sign-in past the cap: it says what the
// person can do about it.
func tooManyDevices(max int) *syncproto.Error {
	return syncproto.Errorf(syncproto.CodeTooManyDevices,
		"this account is already signed in on as many devices as allowed (%d); sign out on a device you no longer use, or ask an administrator to revoke it, then sign in again", max).
		With("max_devices", max)
}

// forgetDevice deletes a device that may be forgotten (forgettable): its
// record and its index entry. It sent no op, so no result is kept for it.
func forgetDevice(tx *bolt.Tx, d *Device) error {
	if err := tx.Bucket(schema.BucketDevices).Delete([]byte(d.ID)); err != nil {
		return fmt.Errorf("forget device: %w", err)
	}
	if err := tx.Bucket(schema.BucketUserDevices).Delete(userDeviceKey(d.UserID, d.ID)); err != nil {
		return fmt.Errorf("forget device: %w", err)
	}
	return nil
}

// ExpireDevices forgets the devices that have gone unseen for the device
// expiry and may be forgotten (signed out, no op sent, not revoked), and
// returns how many. The app's upkeep runs it daily.
func (s *Store) ExpireDevices(ctx context.Context) (int, error) {
	now := s.now()
	var stale []Device
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachRecord(tx.Bucket(schema.BucketDevices), func(_ []byte, d *Device) error {
			if s.devices.expired(d, now) && s.devices.forgettable(d, now) {
				stale = append(stale, *d)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for len(stale) > 0 {
		chunk := stale[:min(len(stale), expireChunk)]
		stale = stale[len(chunk):]
		forgot, err := s.forgetStale(ctx, chunk, now)
		n += forgot
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// expireChunk bounds the devices one transaction of ExpireDevices forgets,
// so the writer is not held long.
const expireChunk = 1000

// forgetStale forgets those of stale that still may be, in one write.
func (s *Store) forgetStale(ctx context.Context, stale []Device, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		for i := range stale {
			// Read again: the device may have signed in since.
			var d Device
			found, err := get(tx.Bucket(schema.BucketDevices), []byte(stale[i].ID), &d)
			if err != nil {
				return err
			}
			if !found || !s.devices.expired(&d, now) || !s.devices.forgettable(&d, now) {
				continue
			}
			if err := forgetDevice(tx, &d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
