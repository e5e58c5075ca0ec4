package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
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
	return view(s, func(tx *bolt.Tx) (DeviceCheck, error) {
		dev, u, err := s.deviceAndUser(tx, actor, syncproto.CodeUnauthorized)
		return DeviceCheck{Device: dev, User: u}, err
	})
}

// SignIn is a sign-in as Login stores it.
type SignIn struct {
	DeviceID, Name, Platform string
	// RefreshHash is the SHA-256 of the new refresh token; RefreshTTL how
	// long it lives.
	RefreshHash [32]byte
	RefreshTTL  time.Duration
	// Console makes the device a browser's session of the web console
	// (Device.Console): RefreshTTL is then its whole lifetime, and Idle
	// how long it may go unheard of.
	Console bool
	Idle    time.Duration
	// Node is the cluster node a console session signed in on (its
	// --node-id; empty on one node): the session lives in that node's
	// memory, and only that node ends it when it starts again.
	Node string
}

// Session is what a token pair is issued for: the user, and the device's
// session number the access token carries (Device.Session).
type Session struct {
	User   *User
	Number uint64
	// Graced reports a refresh that was a retry within the grace window
	// (Refresh).
	Graced bool
}

// Login registers in.DeviceID to the user on first use and stores a new
// refresh token hash for it. A device that belongs to another user is
// forbidden; a revoked device is device_revoked. A sign-in that starts a
// session (a new device, or one signed out) when the user has the most
// devices signed in is too_many_devices, and stores nothing (devices.go).
func (s *Store) Login(ctx context.Context, u *User, in SignIn) (Session, error) {
	return submit[Session](ctx, s, &loginCmd{User: u, In: in, Policy: s.devices})
}

// loginCmd is a sign-in of User (read and checked by the caller) at Now.
type loginCmd struct {
	User   *User        `json:"user"`
	In     SignIn       `json:"in"`
	Now    time.Time    `json:"now"`
	Policy devicePolicy `json:"policy"`
}

func (*loginCmd) kind() cmdKind { return cmdLogin }

func (c *loginCmd) stamp(now time.Time) { c.Now = now }

func (c *loginCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	u, in, now := c.User, &c.In, c.Now
	// The password was checked against c.User as the node that made the
	// command read it. A node of a cluster behind the others may have
	// read it before a password change or a disable made elsewhere:
	// the sign-in holds only if the account is still the one checked.
	stored, err := loadUser(tx, u.ID)
	if err != nil {
		return nil, err
	}
	if stored == nil || !stored.Active || stored.PasswordHash != u.PasswordHash {
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "wrong username or password")
	}
	devices := tx.Bucket(schema.BucketDevices)
	var dev Device
	found, err := get(devices, []byte(in.DeviceID), &dev)
	if err != nil {
		return nil, err
	}
	switch {
	case found && dev.UserID != u.ID:
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "this device belongs to another user")
	case found && dev.Revoked:
		return nil, syncproto.Errorf(syncproto.CodeDeviceRevoked, "this device may no longer sync").With("wipe", dev.Wipe)
	}
	signedIn := found && c.Policy.signedIn(&dev, now)
	if !signedIn {
		forget, err := c.Policy.makeRoom(tx, u.ID, in.DeviceID, in.Console, now)
		if err != nil {
			return nil, err
		}
		for i := range forget {
			if err := forgetDevice(tx, &forget[i]); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case !found:
		n, err := nextSession(devices)
		if err != nil {
			return nil, err
		}
		// A device id the store forgot and sees again starts a
		// refresh generation none of its old tokens has.
		dev = Device{ID: in.DeviceID, UserID: u.ID, Created: now.UTC(), Session: n, RefreshGen: n, Console: in.Console, Idle: in.Idle, Node: in.Node}
	case !signedIn:
		// A new session: nothing of the one that ended (or expired)
		// works again.
		if err := endSession(devices, &dev, now); err != nil {
			return nil, err
		}
	}
	dev.Name, dev.Platform = in.Name, in.Platform
	dev.LastAuth, dev.SessionEnds = now.UTC(), now.Add(in.RefreshTTL).UTC()
	if err := put(devices, []byte(in.DeviceID), &dev); err != nil {
		return nil, err
	}
	if err := tx.Bucket(schema.BucketUserDevices).Put(userDeviceKey(u.ID, in.DeviceID), nil); err != nil {
		return nil, err
	}
	rt := RefreshToken{DeviceID: in.DeviceID, UserID: u.ID, Gen: dev.RefreshGen, Expires: dev.SessionEnds}
	if err := put(tx.Bucket(schema.BucketRefresh), in.RefreshHash[:], &rt); err != nil {
		return nil, err
	}
	return Session{User: u, Number: dev.Session}, nil
}

// ErrRefreshReused is what Refresh returns when a spent refresh token comes
// back: a variable, so the app can count reuse apart from other failures.
var ErrRefreshReused = syncproto.Errorf(syncproto.CodeUnauthorized, "this refresh token was already used; every session of this device is ended, log in again")

// Refresh spends the refresh token with hash old and stores its successor,
// next, and returns the session the new pair is for; Session.Graced
// reports a grace retry (below). A device unseen for the device expiry
// must sign in again (devices.go).
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
func (s *Store) Refresh(ctx context.Context, old [32]byte, deviceID string, next [32]byte, refreshTTL, grace time.Duration) (Session, error) {
	r, err := submit[refreshResult](ctx, s, &refreshCmd{Old: old, DeviceID: deviceID, Next: next, RefreshTTL: refreshTTL, Grace: grace, Policy: s.devices})
	if err != nil {
		return Session{}, err
	}
	if r.Reuse {
		return Session{}, ErrRefreshReused
	}
	return r.Session, nil
}

// refreshCmd spends refresh token Old of DeviceID at Now for Next.
type refreshCmd struct {
	Old        [32]byte      `json:"old"`
	DeviceID   string        `json:"device_id"`
	Next       [32]byte      `json:"next"`
	RefreshTTL time.Duration `json:"refresh_ttl"`
	Grace      time.Duration `json:"grace"`
	Now        time.Time     `json:"now"`
	Policy     devicePolicy  `json:"policy"`
}

// refreshResult is a refresh's answer: the session, or Reuse, which ended
// the device's chain (committed, and answered with ErrRefreshReused).
type refreshResult struct {
	Session Session
	Reuse   bool
}

func (*refreshCmd) kind() cmdKind { return cmdRefresh }

func (c *refreshCmd) stamp(now time.Time) { c.Now = now }

func (c *refreshCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	old, next, deviceID, now := c.Old, c.Next, c.DeviceID, c.Now
	refresh := tx.Bucket(schema.BucketRefresh)
	var rt RefreshToken
	found, err := get(refresh, old[:], &rt)
	if err != nil {
		return nil, err
	}
	if !found || subtle.ConstantTimeCompare([]byte(rt.DeviceID), []byte(deviceID)) != 1 {
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token is not valid; log in again")
	}
	devices := tx.Bucket(schema.BucketDevices)
	var dev Device
	if found, err := get(devices, []byte(deviceID), &dev); err != nil {
		return nil, err
	} else if !found || dev.UserID != rt.UserID {
		// No device, or another user's under an id the store forgot.
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token is not valid; log in again")
	}
	if dev.Revoked {
		return nil, syncproto.Errorf(syncproto.CodeDeviceRevoked, "this device may no longer sync").With("wipe", dev.Wipe)
	}
	// A device whose last refresh is not known (from before it was
	// kept) goes by its refresh token's expiry alone.
	if !dev.LastAuth.IsZero() && c.Policy.expired(&dev, now) {
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "this device was not used for %s; sign in again", days(c.Policy.Expiry))
	}
	if consoleIdle(&dev, now) {
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "this console session was not used for %s; sign in again", dev.Idle)
	}
	graced := false
	var successor RefreshToken
	if rt.Used && rt.Gen == dev.RefreshGen {
		ok, err := inGrace(refresh, &rt, &successor, now, c.Grace)
		if err != nil {
			return nil, err
		}
		if !ok {
			// Reuse: end the chain. This write is what the caller
			// must see committed, so it is not a protocol error here.
			if err := endSession(devices, &dev, now); err != nil {
				return nil, err
			}
			return refreshResult{Reuse: true}, put(devices, []byte(deviceID), &dev)
		}
		graced = true
	} else if rt.Used || rt.Gen != dev.RefreshGen || now.After(rt.Expires) {
		return nil, syncproto.Errorf(syncproto.CodeUnauthorized, "the refresh token has expired or was revoked; log in again")
	}
	u, err := activeUser(tx, rt.UserID, syncproto.CodeUnauthorized)
	if err != nil {
		return nil, err
	}
	if graced {
		// Retire the successor whose answer was lost. Its window
		// stays where the first spend put it, so retries cannot
		// stretch it.
		retired := rt.Next
		successor.Used, successor.UsedAt = true, now.UTC()
		if err := put(refresh, retired, &successor); err != nil {
			return nil, err
		}
	} else {
		rt.Used, rt.UsedAt = true, now.UTC()
	}
	rt.Next = next[:]
	if err := put(refresh, old[:], &rt); err != nil {
		return nil, err
	}
	nt := RefreshToken{DeviceID: deviceID, UserID: u.ID, Gen: dev.RefreshGen, Expires: now.Add(c.RefreshTTL).UTC()}
	if dev.Console && dev.SessionEnds.Before(nt.Expires) {
		// A console session's lifetime is counted from its sign-in.
		nt.Expires = dev.SessionEnds
	}
	if err := put(refresh, next[:], &nt); err != nil {
		return nil, err
	}
	if err := s.refreshed(tx, &dev, now, nt.Expires); err != nil {
		return nil, err
	}
	return refreshResult{Session: Session{User: u, Number: dev.Session, Graced: graced}}, nil
}

// refreshed records a refresh on dev: it was heard of now and its session
// lasts until ends. A device signed in before sessions were numbered gets
// its number here, and its place in the index of its user's devices.
func (s *Store) refreshed(tx *bolt.Tx, dev *Device, now, ends time.Time) error {
	devices := tx.Bucket(schema.BucketDevices)
	if dev.Session == 0 {
		n, err := nextSession(devices)
		if err != nil {
			return err
		}
		dev.Session = n
	}
	dev.LastAuth, dev.SessionEnds = now.UTC(), ends
	if err := put(devices, []byte(dev.ID), dev); err != nil {
		return err
	}
	return tx.Bucket(schema.BucketUserDevices).Put(userDeviceKey(dev.UserID, dev.ID), nil)
}

// days writes a duration of whole days as a person would.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	switch {
	case d%(24*time.Hour) != 0:
		return d.String()
	case n == 1:
		return "a day"
	}
	return fmt.Sprintf("%d days", n)
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

// Logout ends a device's session: its refresh chain and its access tokens
// stop working at once. A console session is forgotten as well
// (devices.go).
func (s *Store) Logout(ctx context.Context, deviceID string) error {
	_, err := s.write(ctx, &logoutCmd{DeviceID: deviceID})
	return err
}

// logoutCmd ends DeviceID's session at Now.
type logoutCmd struct {
	DeviceID string    `json:"device_id"`
	Now      time.Time `json:"now"`
}

func (*logoutCmd) kind() cmdKind { return cmdLogout }

func (c *logoutCmd) stamp(now time.Time) { c.Now = now }

func (c *logoutCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	devices := tx.Bucket(schema.BucketDevices)
	var dev Device
	found, err := get(devices, []byte(c.DeviceID), &dev)
	if err != nil || !found {
		return nil, err
	}
	if dev.Console {
		return nil, forgetDevice(tx, &dev)
	}
	if err := endSession(devices, &dev, c.Now); err != nil {
		return nil, err
	}
	return nil, put(devices, []byte(c.DeviceID), &dev)
}

// RevokeDevice stops a device from syncing; with wipe, its next request tells
// it to delete its local data. Only admins whose unit holds the device's user
// may do it.
func (s *Store) RevokeDevice(ctx context.Context, actor syncproto.Actor, deviceID string, wipe bool) error {
	_, err := s.write(ctx, &revokeCmd{Actor: principalOf(actor), DeviceID: deviceID, Wipe: wipe})
	return err
}

// revokeCmd is an admin's revocation of DeviceID at Now.
type revokeCmd struct {
	Actor    principal `json:"actor"`
	DeviceID string    `json:"device_id"`
	Wipe     bool      `json:"wipe"`
	Now      time.Time `json:"now"`
}

func (*revokeCmd) kind() cmdKind { return cmdRevokeDevice }

func (c *revokeCmd) stamp(now time.Time) { c.Now = now }

func (c *revokeCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	devices := tx.Bucket(schema.BucketDevices)
	var dev Device
	found, err := get(devices, []byte(c.DeviceID), &dev)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, syncproto.Errorf(syncproto.CodeNotFound, "no device %s", c.DeviceID)
	}
	owner, err := loadUser(tx, dev.UserID)
	if err != nil {
		return nil, err
	}
	if owner == nil || !syncproto.InScope(c.Actor.Unit, owner.Unit) {
		return nil, syncproto.Errorf(syncproto.CodeNotFound, "no device %s", c.DeviceID)
	}
	dev.Revoked, dev.Wipe = true, c.Wipe
	if err := endSession(devices, &dev, c.Now); err != nil {
		return nil, err
	}
	return nil, put(devices, []byte(c.DeviceID), &dev)
}

// OnSigningKeys makes the store call fn after every commit that changed
// the signing keys, whichever node's request or log entry changed them, so
// that the running server signs and verifies with the keys the store holds
// (app.App follows them). fn runs on the writer, after the commit and
// before the requests are answered; it may read the store.
func (s *Store) OnSigningKeys(fn func()) {
	s.keysMu.Lock()
	s.onKeys = fn
	s.keysMu.Unlock()
}

func (s *Store) signingKeysChanged() {
	s.keysMu.Lock()
	fn := s.onKeys
	s.keysMu.Unlock()
	if fn != nil {
		fn()
	}
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
	_, err := s.write(ctx, &addKeyCmd{Key: k, Active: active})
	return err
}

// addKeyCmd stores Key, the active one when Active is set. The key's seed
// is in the command: every node signs and checks tokens with it.
type addKeyCmd struct {
	Key    SigningKey `json:"key"`
	Active bool       `json:"active"`
}

func (*addKeyCmd) kind() cmdKind { return cmdAddSigningKey }

func (c *addKeyCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	if err := put(tx.Bucket(schema.BucketKeys), []byte(c.Key.ID), &c.Key); err != nil {
		return nil, err
	}
	s.afterCommit = append(s.afterCommit, s.signingKeysChanged)
	if c.Active {
		return nil, tx.Bucket(schema.BucketMeta).Put(schema.KeyActiveKID, []byte(c.Key.ID))
	}
	return nil, nil
}

func (s *Store) readKeys() ([]SigningKey, string, error) {
	var keys []SigningKey
	var active string
	err := s.db.View(func(tx *bolt.Tx) error {
		active = string(tx.Bucket(schema.BucketMeta).Get(schema.KeyActiveKID))
		return forEachRecord(tx.Bucket(schema.BucketKeys), func(_ []byte, k *SigningKey) error {
			keys = append(keys, *k)
			return nil
		})
	})
	return keys, active, err
}
