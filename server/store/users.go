package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// userChange is one user's state before (nil for a new user) and after an
// update.
type userChange struct {
	before, after *User
}

// planUsers computes what each update leaves of its user and checks every
// rule on it, writing nothing. Updates of the same username in one batch
// apply in order, each on what the one before left; a new user of in[i]
// gets the id newIDs[i].
func planUsers(tx *bolt.Tx, actor syncproto.Actor, in []UserUpdate, newIDs []string, now time.Time) ([]userChange, error) {
	latest := map[string]*User{}
	plan := make([]userChange, 0, len(in))
	for i, upd := range in {
		field := fmt.Sprintf("users[%d]", i)
		before, planned := latest[upd.Username]
		if !planned {
			var err error
			if before, err = userByUsername(tx, upd.Username); err != nil {
				return nil, err
			}
		}
		after, err := planUser(tx, actor, field, before, upd, newIDs[i], now)
		if err != nil {
			return nil, err
		}
		if err := keepOwnRights(actor, field, before, after); err != nil {
			return nil, err
		}
		latest[upd.Username] = after
		plan = append(plan, userChange{before: before, after: after})
	}
	if err := keepRootAdmin(tx, plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// planUser is before with the fields upd names changed, or a new user
// with id newID. An existing account outside the actor's unit is not
// theirs to change, nor to pull into their unit.
func planUser(tx *bolt.Tx, actor syncproto.Actor, field string, before *User, upd UserUpdate, newID string, now time.Time) (*User, error) {
	if before != nil && !syncproto.InScope(actor.Unit, before.Unit) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "user %s belongs to a unit outside yours", upd.Username)
	}
	var u User
	if before == nil {
		switch {
		case upd.PasswordHash == "":
			return nil, syncproto.InvalidField(field+".password", "a new user needs a password")
		case upd.Name == "":
			return nil, syncproto.InvalidField(field+".name", "a new user needs a name")
		case upd.Unit == "":
			return nil, syncproto.InvalidField(field+".unit", "a new user needs a unit")
		}
		u = User{ID: newID, Created: now, Active: true}
	} else {
		u = *before
	}
	u.Username = upd.Username
	if upd.Unit != "" {
		unit, err := loadUnit(tx, upd.Unit)
		if err != nil {
			return nil, err
		}
		if unit == nil {
			return nil, syncproto.InvalidField(field+".unit", "unit %q does not exist", upd.Unit)
		}
		if !syncproto.InScope(actor.Unit, upd.Unit) {
			return nil, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", upd.Unit)
		}
		u.Unit = upd.Unit
	}
	u.Role = syncproto.UnitLevel(u.Unit)
	if upd.Name != "" {
		u.Name = upd.Name
	}
	if upd.Admin != nil {
		u.Admin = *upd.Admin
	}
	if upd.Active != nil {
		u.Active = *upd.Active
	}
	if upd.PasswordHash != "" {
		u.PasswordHash = upd.PasswordHash
	}
	return &u, nil
}

// keepOwnRights refuses a change by which an administrator would disable
// their own account, give up their administrator rights, or move to
// another unit (which narrows or ends what they manage): done by mistake,
// it cannot be undone by the same person, and done by the only
// administrator it locks everyone out of administration. Another
// administrator may make any of these changes.
func keepOwnRights(actor syncproto.Actor, field string, before, after *User) error {
	if before == nil || before.ID != actor.UserID {
		return nil
	}
	switch {
	case before.Active && !after.Active:
		return ownAccount(field+".active", "you cannot disable your own account; another administrator can")
	case before.Admin && !after.Admin:
		return ownAccount(field+".admin", "you cannot take away your own administrator rights; another administrator can")
	case before.Unit != after.Unit:
		return ownAccount(field+".unit", "you cannot move your own account to another unit; another administrator can")
	}
	return nil
}

func ownAccount(field, msg string) error {
	return syncproto.Errorf(syncproto.CodeForbidden, "%s", msg).With("field", field).With("reason", syncproto.ReasonOwnAccount)
}

// isRootAdmin reports whether u is an active administrator of a root unit
// (the city): only such a one may manage the root unit's users, rotate the
// signing keys and take backups.
func isRootAdmin(u *User) bool {
	return u != nil && u.Active && u.Admin && syncproto.UnitLevel(u.Unit) == syncproto.RoleCenter
}

// keepRootAdmin refuses a batch that would leave a root unit without an
// active administrator: nobody could then manage that unit's accounts
// again short of editing the store. It looks only at root units the batch
// takes an administrator from, and counts their administrators as the
// batch leaves them.
func keepRootAdmin(tx *bolt.Tx, plan []userChange) error {
	final := map[string]*User{}
	for _, c := range plan {
		final[c.after.ID] = c.after
	}
	checked := map[string]bool{}
	for i, c := range plan {
		root := ""
		if isRootAdmin(c.before) {
			root = c.before.Unit
		}
		if root == "" || checked[root] || (isRootAdmin(c.after) && c.after.Unit == root) {
			continue
		}
		checked[root] = true
		n, err := countRootAdmins(tx, root, final)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		field := fmt.Sprintf("users[%d].%s", i, lostRight(c.after))
		return syncproto.Errorf(syncproto.CodeForbidden,
			"user %s is the last active administrator of unit %s; make another administrator there first", c.after.Username, root).
			With("field", field).With("reason", syncproto.ReasonLastRootAdmin)
	}
	return nil
}

// lostRight names the field by which a root administrator stops being one.
func lostRight(after *User) string {
	switch {
	case !after.Active:
		return "active"
	case !after.Admin:
		return "admin"
	}
	return "unit"
}

// countRootAdmins counts the active administrators of root as final (the
// users a batch changes, by id) leaves them: the unit's stored users, with
// final's state for those it changes, and final's users moved into it.
func countRootAdmins(tx *bolt.Tx, root string, final map[string]*User) (int, error) {
	n := 0
	for _, u := range final {
		if u.Unit == root && isRootAdmin(u) {
			n++
		}
	}
	prefix := []byte(root + "/")
	c := tx.Bucket(schema.BucketUnitUsers).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix):])
		if _, changed := final[id]; changed {
			continue
		}
		u, err := loadUser(tx, id)
		if err != nil {
			return 0, err
		}
		if u != nil && isRootAdmin(u) {
			n++
		}
	}
	return n, nil
}
