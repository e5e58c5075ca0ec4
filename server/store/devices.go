package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
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
//
// A browser's session of the web console is a device too, for the op path
// (its actions are ops with its own client_seq) and the session check of
// every request, but marked Console: it is not a phone. It never counts
// toward the phone cap; a user keeps at most MaxConsoleSessions of them,
// and one more ends the oldest instead of being refused. It ends on
// sign-out, when unheard of for its idle limit, and at the end of the
// lifetime it signed in with, and once ended it is forgotten with its
// results: no browser ever goes on with a console session's client_seq.

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
	// MaxConsoleSessions is how many console sessions a user keeps at
	// once: a lead at a few desks and a phone browser, with room for
	// tabs closed without signing out; a sign-in past it ends the oldest.
	MaxConsoleSessions = 20
)

// devicePolicy is Options' sign-in policy with the defaults filled in. The
// commands that apply it carry it, so every node applies the one their
// maker had.
type devicePolicy struct {
	Max    int           `json:"max"` // <= 0: no cap
	Expiry time.Duration `json:"expiry"`
}

func newDevicePolicy(maxDevices int, expiry time.Duration) devicePolicy {
	if maxDevices == 0 {
		maxDevices = DefaultMaxDevicesPerUser
	}
	if expiry <= 0 {
		expiry = DefaultDeviceExpiry
	}
	return devicePolicy{Max: maxDevices, Expiry: expiry}
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
	return now.Sub(d.lastActive()) >= p.Expiry
}

// signedIn reports whether d holds a session that can still refresh: not
// revoked, not signed out, not past its refresh token's expiry nor the
// device expiry.
func (p devicePolicy) signedIn(d *Device, now time.Time) bool {
	return !d.Revoked && now.Before(d.SessionEnds) && !p.expired(d, now) && !consoleIdle(d, now)
}

// consoleIdle reports whether d is a console session unheard of for its idle
// limit: it has ended, whatever its refresh token says.
func consoleIdle(d *Device, now time.Time) bool {
	return d.Console && d.Idle > 0 && now.Sub(d.lastActive()) >= d.Idle
}

// forgettable reports whether d may be deleted: a console session that
// has ended, or a phone signed out that never sent an op and is not
// revoked.
func (p devicePolicy) forgettable(d *Device, now time.Time) bool {
	if p.signedIn(d, now) {
		return false
	}
	return d.Console || !d.Revoked && d.LastClientSeq == 0
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
// userID, a console session when console is set: it returns
// too_many_devices when a phone's sign-in finds the user with the most
// phones signed in already, and otherwise the user's devices to forget:
// those that may be, and for a console sign-in the oldest console
// sessions past MaxConsoleSessions, which it ends. It writes nothing.
func (p devicePolicy) makeRoom(tx *bolt.Tx, userID, deviceID string, console bool, now time.Time) ([]Device, error) {
	if p.Max <= 0 && !console {
		return nil, nil
	}
	mine, err := devicesOfUser(tx, userID)
	if err != nil {
		return nil, err
	}
	phones := 0
	var forget, consoles []Device
	for i := range mine {
		d := &mine[i]
		switch {
		case d.ID == deviceID:
		case p.signedIn(d, now) && d.Console:
			consoles = append(consoles, *d)
		case p.signedIn(d, now):
			phones++
		case p.forgettable(d, now):
			forget = append(forget, *d)
		}
	}
	if console {
		// The oldest first; the new session is one more.
		slices.SortFunc(consoles, func(a, b Device) int { return a.Created.Compare(b.Created) })
		if extra := len(consoles) + 1 - MaxConsoleSessions; extra > 0 {
			forget = append(forget, consoles[:extra]...)
		}
		return forget, nil
	}
	if p.Max > 0 && phones >= p.Max {
		return nil, tooManyDevices(p.Max)
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
// record, its index entry, and the results of the ops it sent (only a
// console session that sent ops has any), which nobody can ask for again.
// A token of its session finds no device and is refused.
func forgetDevice(tx *bolt.Tx, d *Device) error {
	if err := tx.Bucket(schema.BucketDevices).Delete([]byte(d.ID)); err != nil {
		return fmt.Errorf("forget device: %w", err)
	}
	if err := tx.Bucket(schema.BucketUserDevices).Delete(userDeviceKey(d.UserID, d.ID)); err != nil {
		return fmt.Errorf("forget device: %w", err)
	}
	if d.LastClientSeq == 0 {
		return nil
	}
	// Keys gathered first: a bbolt cursor may skip a key after a delete.
	results := tx.Bucket(schema.BucketResults)
	var keys [][]byte
	prefix := []byte(d.ID)
	c := results.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := results.Delete(k); err != nil {
			return fmt.Errorf("forget device's results: %w", err)
		}
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
			if s.devices.stale(d, now) {
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

// stale reports whether the upkeep forgets d: a console session that has
// ended, or a device that may be forgotten and has gone unseen for the
// expiry.
func (p devicePolicy) stale(d *Device, now time.Time) bool {
	if d.Console {
		return p.forgettable(d, now)
	}
	return p.expired(d, now) && p.forgettable(d, now)
}

// expireChunk bounds the devices one transaction of ExpireDevices forgets,
// so the writer is not held long.
const expireChunk = 1000

// forgetStale forgets those of stale that still may be, in one write.
func (s *Store) forgetStale(ctx context.Context, stale []Device, now time.Time) (int, error) {
	ids := make([]string, len(stale))
	for i := range stale {
		ids[i] = stale[i].ID
	}
	return submit[int](ctx, s, &forgetStaleCmd{IDs: ids, Now: now, Policy: s.devices})
}

// forgetStaleCmd forgets the devices of IDs that are stale at Now.
type forgetStaleCmd struct {
	IDs    []string     `json:"ids"`
	Now    time.Time    `json:"now"`
	Policy devicePolicy `json:"policy"`
}

func (*forgetStaleCmd) kind() cmdKind { return cmdForgetStale }

func (c *forgetStaleCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	n := 0
	for _, id := range c.IDs {
		// Read again: the device may have signed in since.
		var d Device
		found, err := get(tx.Bucket(schema.BucketDevices), []byte(id), &d)
		if err != nil {
			return nil, err
		}
		if !found || !c.Policy.stale(&d, c.Now) {
			continue
		}
		if err := forgetDevice(tx, &d); err != nil {
			return nil, err
		}
		n++
	}
	return n, nil
}

// consoleDevice reports whether d is a console session: marked so, or a
// device the console registered for each sign-in before sign-ins became
// sessions (named 网页控制台 on platform web), which still counted toward
// the phone cap and was offered the wipe box.
func consoleDevice(d *Device) bool {
	return d.Console || (d.Platform == "web" && d.Name == "网页控制台")
}

// EndConsoleSessions forgets the console sessions of node, and returns
// how many: the console keeps its sessions in memory, so those of an
// earlier run of the server have no browser any more. The console runs it
// as it starts; the first start after the upgrade also forgets the
// console's old per-sign-in devices.
//
// node is the cluster node starting (its --node-id), empty on one node:
// on a cluster the sessions of the other nodes live on in their memory,
// so a node ends only its own and those that name no node (made before
// sessions named theirs; no node holds them). Empty ends every one.
func (s *Store) EndConsoleSessions(ctx context.Context, node string) (int, error) {
	any, err := view(s, func(tx *bolt.Tx) (bool, error) {
		found := false
		err := forEachRecord(tx.Bucket(schema.BucketDevices), func(_ []byte, d *Device) error {
			found = found || endsWith(d, node)
			return nil
		})
		return found, err
	})
	if err != nil || !any {
		return 0, err
	}
	return submit[int](ctx, s, &endConsoleCmd{Node: node})
}

// endsWith reports whether the start of node ends console session d.
func endsWith(d *Device, node string) bool {
	return consoleDevice(d) && (node == "" || d.Node == "" || d.Node == node)
}

// endConsoleCmd forgets the console sessions of a node (every one when
// Node is empty, as the entries written before it named one say).
type endConsoleCmd struct {
	Node string `json:"node,omitempty"`
}

func (*endConsoleCmd) kind() cmdKind { return cmdEndConsoleSessions }

func (c *endConsoleCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	var ended []Device
	err := forEachRecord(tx.Bucket(schema.BucketDevices), func(_ []byte, d *Device) error {
		if endsWith(d, c.Node) {
			ended = append(ended, *d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range ended {
		if err := forgetDevice(tx, &ended[i]); err != nil {
			return nil, err
		}
	}
	return len(ended), nil
}
