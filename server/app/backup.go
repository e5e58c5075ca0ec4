package app

import (
	"context"
	"io"
	"time"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Backup writes a consistent copy of the whole store to w (see
// store.Backup). A backup holds the whole city, every unit's personal data
// and the password hashes, so only an administrator of the root unit may
// take one: forbidden for anyone else, checked before anything is written.
func (a *App) Backup(ctx context.Context, p Principal, w io.Writer) (*store.BackupInfo, error) {
	if err := requireRootAdmin(p); err != nil {
		return nil, err
	}
	// One at a time: each holds a read transaction while it copies the
	// database and needs a database-sized temporary file beside it.
	if !a.backingUp.TryLock() {
		return nil, tooMany(time.Minute, "a backup is already being taken")
	}
	defer a.backingUp.Unlock()
	return a.store.Backup(ctx, w)
}

// requireRootAdmin answers forbidden unless p is an administrator of the
// root unit (the city: a unit without a parent).
func requireRootAdmin(p Principal) error {
	if !p.Admin || syncproto.UnitLevel(p.Actor.Unit) != syncproto.RoleCenter || syncproto.ParentCode(p.Actor.Unit) != "" {
		return syncproto.Errorf(syncproto.CodeForbidden, "only an administrator of the root unit may do this")
	}
	return nil
}
