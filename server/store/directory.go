package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// txDir answers syncproto.Directory inside a transaction. The interface
// has no room for an error, so the first one met (a record that does not
// decode) is kept in err, and the lookup answers "none": whoever hands a
// txDir to Apply checks err afterwards and fails the transaction with it,
// so a damaged record is never taken for a missing one.
type txDir struct {
	tx  *bolt.Tx
	err error
}

var _ syncproto.Directory = (*txDir)(nil)

func (d *txDir) keep(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *txDir) Unit(code string) (syncproto.Unit, bool) {
	u, err := loadUnit(d.tx, code)
	if err != nil || u == nil {
		d.keep(err)
		return syncproto.Unit{}, false
	}
	return *u, true
}

func (d *txDir) User(id string) (syncproto.DirectoryUser, bool) {
	u, err := loadUser(d.tx, id)
	if err != nil || u == nil {
		d.keep(err)
		return syncproto.DirectoryUser{}, false
	}
	return u.Directory(), true
}

func (d *txDir) SoleActiveCadre(unit string) (string, bool) {
	found := ""
	prefix := []byte(unit + "/")
	c := d.tx.Bucket(schema.BucketUnitUsers).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		u, err := loadUser(d.tx, string(k[len(prefix):]))
		if err != nil {
			d.keep(err)
			return "", false
		}
		if u == nil || !u.Active || u.Role != syncproto.RoleVillage {
			continue
		}
		if found != "" {
			return "", false
		}
		found = u.ID
	}
	return found, found != ""
}

// loadUser returns the user with id, nil when there is none. A record
// that does not decode is an error, never a missing user.
func loadUser(tx *bolt.Tx, id string) (*User, error) {
	u, err := load[User](tx.Bucket(schema.BucketUsers), []byte(id))
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

// activeUser loads the user with id and refuses one deleted or disabled
// with code: forbidden for a push or a pull, unauthorized for a request's
// sign-in (CheckDevice, Refresh).
func activeUser(tx *bolt.Tx, id, code string) (*User, error) {
	u, err := loadUser(tx, id)
	if err != nil {
		return nil, err
	}
	if u == nil || !u.Active {
		return nil, syncproto.Errorf(code, "this account is disabled")
	}
	return u, nil
}

// loadUnit returns the unit with code, nil when there is none.
func loadUnit(tx *bolt.Tx, code string) (*syncproto.Unit, error) {
	u, err := load[syncproto.Unit](tx.Bucket(schema.BucketUnits), []byte(code))
	if err != nil {
		return nil, fmt.Errorf("read unit %s: %w", code, err)
	}
	return u, nil
}

// userByUsername returns the user named username, nil when there is none.
func userByUsername(tx *bolt.Tx, username string) (*User, error) {
	id := tx.Bucket(schema.BucketUsernames).Get([]byte(username))
	if id == nil {
		return nil, nil
	}
	return loadUser(tx, string(id))
}

// User returns a user by id, nil when there is none.
func (s *Store) User(id string) (*User, error) {
	return view(s, func(tx *bolt.Tx) (*User, error) { return loadUser(tx, id) })
}

// UserByUsername returns a user by username, nil when there is none.
func (s *Store) UserByUsername(username string) (*User, error) {
	return view(s, func(tx *bolt.Tx) (*User, error) { return userByUsername(tx, username) })
}

// Unit returns a unit by code, nil when there is none.
func (s *Store) Unit(code string) (*syncproto.Unit, error) {
	return view(s, func(tx *bolt.Tx) (*syncproto.Unit, error) { return loadUnit(tx, code) })
}

// UpsertUnits creates or renames units, parents before children. Every unit
// must lie in scope (the admin's unit). The whole request is refused, with
// nothing written, if any unit is invalid.
func (s *Store) UpsertUnits(ctx context.Context, actor syncproto.Actor, in []syncproto.UnitInput) ([]syncproto.Unit, error) {
	return submit[[]syncproto.Unit](ctx, s, &unitsCmd{Actor: principalOf(actor), Units: in})
}

// unitsCmd is an admin's units to create or rename, at Now.
type unitsCmd struct {
	Actor principal             `json:"actor"`
	Units []syncproto.UnitInput `json:"units"`
	Now   time.Time             `json:"now"`
}

func (*unitsCmd) kind() cmdKind { return cmdUpsertUnits }

func (c *unitsCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *unitsCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	actor, in := c.Actor.actor(), c.Units
	out := make([]syncproto.Unit, 0, len(in))
	known := map[string]bool{}
	for i, u := range in {
		field := fmt.Sprintf("units[%d]", i)
		level := syncproto.UnitLevel(u.Code)
		switch {
		case level == "":
			return nil, syncproto.InvalidField(field+".code", "unit code %q must be 4, 6, 9 or 12 digits", u.Code)
		case strings.TrimSpace(u.Name) == "" || len(u.Name) > 200:
			return nil, syncproto.InvalidField(field+".name", "unit %s needs a name of at most 200 bytes", u.Code)
		case !syncproto.InScope(actor.Unit, u.Code):
			return nil, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", u.Code)
		}
		if parent := syncproto.ParentCode(u.Code); parent != "" && !known[parent] {
			p, err := loadUnit(tx, parent)
			if err != nil {
				return nil, err
			}
			if p == nil {
				return nil, syncproto.InvalidField(field+".code", "unit %s comes before its parent %s; send parents first", u.Code, parent)
			}
		}
		known[u.Code] = true
	}
	for _, u := range in {
		unit := syncproto.Unit{Code: u.Code, Name: strings.TrimSpace(u.Name), Level: syncproto.UnitLevel(u.Code)}
		if err := put(tx.Bucket(schema.BucketUnits), []byte(u.Code), unit); err != nil {
			return nil, err
		}
		seq, err := appendLog(tx, &LogEntry{Type: EntryUnit, EntityID: u.Code, ActorID: actor.UserID, DeviceID: actor.DeviceID, ReceivedAt: c.Now})
		if err != nil {
			return nil, err
		}
		if err := s.indexMove(tx, seq, entUnit, u.Code, nil, unitScopes(u.Code)); err != nil {
			return nil, err
		}
		out = append(out, unit)
	}
	return out, nil
}

// UserUpdate is one user to create or change, by username. An update
// changes only what it names: an empty Name, Unit or PasswordHash and a nil
// Admin or Active keep what the user has. A new user needs a name, a unit
// and a password hash; Active defaults to true and Admin to false.
type UserUpdate struct {
	Username     string
	Name         string
	Unit         string
	Admin        *bool
	Active       *bool
	PasswordHash string
}

// UpsertUsers creates or updates users by username. Their units must exist
// in actor's scope. The whole request is refused, with nothing written, if
// any user is invalid, or if it would take the actor's own rights away or
// leave the root unit without an active administrator (users.go).
func (s *Store) UpsertUsers(ctx context.Context, actor syncproto.Actor, in []UserUpdate) ([]User, error) {
	// An id for each update, used if it makes a new user.
	ids := make([]string, len(in))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	return submit[[]User](ctx, s, &usersCmd{Actor: principalOf(actor), Updates: in, NewIDs: ids})
}

// usersCmd is an admin's users to create or change, at Now; a new user of
// Updates[i] gets id NewIDs[i].
type usersCmd struct {
	Actor   principal    `json:"actor"`
	Updates []UserUpdate `json:"updates"`
	NewIDs  []string     `json:"new_ids"`
	Now     time.Time    `json:"now"`
}

func (*usersCmd) kind() cmdKind { return cmdUpsertUsers }

func (c *usersCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *usersCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	// Every rule is checked before the first write: a protocol error
	// does not roll back what the command wrote before it.
	plan, err := planUsers(tx, c.Actor.actor(), c.Updates, c.NewIDs, c.Now)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(plan))
	for _, p := range plan {
		seq, err := appendLog(tx, &LogEntry{Type: EntryUser, EntityID: p.after.ID, ActorID: c.Actor.UserID, DeviceID: c.Actor.DeviceID, ReceivedAt: c.Now})
		if err != nil {
			return nil, err
		}
		p.after.Version = seq
		if err := s.saveUser(tx, p.before, p.after, seq); err != nil {
			return nil, err
		}
		out = append(out, *p.after)
	}
	return out, nil
}

// saveUser writes u and keeps the username and unit lookups and the scope
// indexes in step with it. Only village users appear in leads' directories.
func (s *Store) saveUser(tx *bolt.Tx, before, u *User, seq uint64) error {
	if err := put(tx.Bucket(schema.BucketUsers), []byte(u.ID), u); err != nil {
		return err
	}
	if err := tx.Bucket(schema.BucketUsernames).Put([]byte(u.Username), []byte(u.ID)); err != nil {
		return err
	}
	var beforeScopes []string
	if before != nil {
		if before.Username != u.Username {
			if err := tx.Bucket(schema.BucketUsernames).Delete([]byte(before.Username)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(schema.BucketUnitUsers).Delete([]byte(before.Unit + "/" + before.ID)); err != nil {
			return err
		}
		if before.Role == syncproto.RoleVillage {
			beforeScopes = unitScopes(before.Unit)
		}
	}
	if err := tx.Bucket(schema.BucketUnitUsers).Put([]byte(u.Unit+"/"+u.ID), nil); err != nil {
		return err
	}
	var afterScopes []string
	if u.Role == syncproto.RoleVillage {
		afterScopes = unitScopes(u.Unit)
	}
	return s.indexMove(tx, seq, entUser, u.ID, beforeScopes, afterScopes)
}

// appendLog gives e the next log sequence and stores it.
func appendLog(tx *bolt.Tx, e *LogEntry) (uint64, error) {
	b := tx.Bucket(schema.BucketLog)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	e.Seq = seq
	return seq, putLogEntry(b, e)
}

// LastSeq is the newest log sequence.
func (s *Store) LastSeq() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		seq = tx.Bucket(schema.BucketLog).Sequence()
		return nil
	})
	return seq, err
}

// now is a helper for callers outside the package that need the store's
// clock, such as token issuing.
func (s *Store) Now() time.Time { return s.now() }

// Directory lists the units of scope's subtree and the village users in
// it, for a lead's dispatch and assignment pickers.
func (s *Store) Directory(scope string) ([]syncproto.Unit, []syncproto.DirectoryUser, error) {
	var units []syncproto.Unit
	var users []syncproto.DirectoryUser
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.BucketUnits).Cursor()
		for k, v := c.Seek([]byte(scope)); k != nil && bytes.HasPrefix(k, []byte(scope)); k, v = c.Next() {
			var u syncproto.Unit
			if err := decode(v, &u); err != nil {
				return err
			}
			units = append(units, u)
		}
		uc := tx.Bucket(schema.BucketUnitUsers).Cursor()
		for k, _ := uc.Seek([]byte(scope)); k != nil && bytes.HasPrefix(k, []byte(scope)); k, _ = uc.Next() {
			unit, id, _ := strings.Cut(string(k), "/")
			if syncproto.UnitLevel(unit) != syncproto.RoleVillage {
				continue
			}
			u, err := loadUser(tx, id)
			if err != nil {
				return err
			}
			if u != nil && u.Active {
				users = append(users, u.Directory())
			}
		}
		return nil
	})
	return units, users, err
}

// UsersIn lists every user of scope's subtree, by unit then username.
func (s *Store) UsersIn(scope string) ([]User, error) {
	var users []User
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.BucketUnitUsers).Cursor()
		for k, _ := c.Seek([]byte(scope)); k != nil && bytes.HasPrefix(k, []byte(scope)); k, _ = c.Next() {
			_, id, _ := strings.Cut(string(k), "/")
			u, err := loadUser(tx, id)
			if err != nil {
				return err
			}
			if u != nil {
				users = append(users, *u)
			}
		}
		return nil
	})
	return users, err
}

// DevicesOf lists the devices of the given users.
func (s *Store) DevicesOf(userIDs map[string]bool) ([]Device, error) {
	var devices []Device
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachRecord(tx.Bucket(schema.BucketDevices), func(_ []byte, d *Device) error {
			if userIDs[d.UserID] {
				devices = append(devices, *d)
			}
			return nil
		})
	})
	return devices, err
}
