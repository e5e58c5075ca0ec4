package app

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// AdminUsername is the account `fieldsyncd init` creates.
const AdminUsername = "admin"

// Bootstrap creates the root unit and the admin user of a new store. It is
// what `fieldsyncd init` does; running it again changes nothing but the
// admin's password when one is given.
func Bootstrap(ctx context.Context, st *store.Store, rootCode, rootName, adminPassword string) error {
	if syncproto.UnitLevel(rootCode) != syncproto.RoleCenter {
		return fmt.Errorf("root unit %q must be a 4-digit city code", rootCode)
	}
	if err := auth.ValidatePassword(adminPassword); err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	system := syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: rootCode}
	if _, err := st.UpsertUnits(ctx, system, []syncproto.UnitInput{{Code: rootCode, Name: rootName}}); err != nil {
		return fmt.Errorf("create root unit: %w", err)
	}
	hash, err := auth.HashPassword(adminPassword)
	if err != nil {
		return err
	}
	_, err = st.UpsertUsers(ctx, system, []store.UserUpdate{{
		Username: AdminUsername, Name: "Administrator", Unit: rootCode, Admin: new(true), PasswordHash: hash,
	}})
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	return nil
}
