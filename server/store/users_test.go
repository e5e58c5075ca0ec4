package store_test

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// usersWorld is a store with the root unit 4110, its county 411002 and
// one root administrator, "root", changed by a system actor that is none
// of its users (as fieldsyncd init and the demo are).
type usersWorld struct {
	st     *store.Store
	system syncproto.Actor
}

func newUsersWorld(tb testing.TB) *usersWorld {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{Create: true, NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	w := &usersWorld{st: st, system: syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: "4110"}}
	ctx := context.Background()
	if _, err := st.UpsertUnits(ctx, w.system, []syncproto.UnitInput{{Code: "4110", Name: "许昌市"}, {Code: "411002", Name: "魏都区"}}); err != nil {
		tb.Fatal(err)
	}
	w.upsert(tb, store.UserUpdate{Username: "root", Name: "管理员", Unit: "4110", Admin: new(true), PasswordHash: "x"})
	return w
}

func (w *usersWorld) upsert(tb testing.TB, in ...store.UserUpdate) []store.User {
	tb.Helper()
	users, err := w.st.UpsertUsers(context.Background(), w.system, in)
	if err != nil {
		tb.Fatalf("upsert %+v: %v", in, err)
	}
	return users
}

func (w *usersWorld) user(tb testing.TB, username string) store.User {
	tb.Helper()
	u, err := w.st.UserByUsername(username)
	if err != nil {
		tb.Fatal(err)
	}
	if u == nil {
		tb.Fatalf("no user %s", username)
	}
	return *u
}

// TestUpsertUsers_LastRootAdmin: the last active administrator of the root
// unit can never be disabled, demoted or moved out of it, by anyone; the
// refusal names the field and the rule, and changes nothing. With another
// root administrator in place, it can.
func TestUpsertUsers_LastRootAdmin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		update store.UserUpdate
		field  string
	}{
		{"Disable", store.UserUpdate{Username: "root", Active: new(false)}, "users[0].active"},
		{"Demote", store.UserUpdate{Username: "root", Admin: new(false)}, "users[0].admin"},
		{"MoveToCounty", store.UserUpdate{Username: "root", Unit: "411002"}, "users[0].unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newUsersWorld(t)
			before, seq := w.user(t, "root"), lastSeq(t, w.st)
			_, err := w.st.UpsertUsers(context.Background(), w.system, []store.UserUpdate{tc.update})
			e := syncproto.AsError(err)
			if e == nil || e.Code != syncproto.CodeForbidden || e.Details["field"] != tc.field || e.Details["reason"] != syncproto.ReasonLastRootAdmin {
				t.Fatalf("got %v %+v, want forbidden naming %s and reason %s", err, e, tc.field, syncproto.ReasonLastRootAdmin)
			}
			if after := w.user(t, "root"); after != before || lastSeq(t, w.st) != seq {
				t.Fatalf("a refused change wrote: %+v -> %+v, log %d -> %d", before, after, seq, lastSeq(t, w.st))
			}
		})
	}
	t.Run("AnotherRootAdminInTheSameBatch", func(t *testing.T) {
		w := newUsersWorld(t)
		w.upsert(t,
			store.UserUpdate{Username: "root2", Name: "新管理员", Unit: "4110", Admin: new(true), PasswordHash: "x"},
			store.UserUpdate{Username: "root", Admin: new(false)})
		if root := w.user(t, "root"); root.Admin {
			t.Fatal("root still an administrator")
		}
	})
	t.Run("AnInactiveAdminDoesNotCount", func(t *testing.T) {
		w := newUsersWorld(t)
		w.upsert(t, store.UserUpdate{Username: "root2", Name: "停用管理员", Unit: "4110", Admin: new(true), Active: new(false), PasswordHash: "x"})
		if _, err := w.st.UpsertUsers(context.Background(), w.system, []store.UserUpdate{{Username: "root", Active: new(false)}}); syncproto.ErrorCode(err) != syncproto.CodeForbidden {
			t.Fatalf("disabling the last active root admin: %v", err)
		}
	})
	t.Run("TwoRootAdminsCannotBothGo", func(t *testing.T) {
		w := newUsersWorld(t)
		w.upsert(t, store.UserUpdate{Username: "root2", Name: "新管理员", Unit: "4110", Admin: new(true), PasswordHash: "x"})
		_, err := w.st.UpsertUsers(context.Background(), w.system, []store.UserUpdate{{Username: "root", Active: new(false)}, {Username: "root2", Admin: new(false)}})
		if e := syncproto.AsError(err); e == nil || e.Details["reason"] != syncproto.ReasonLastRootAdmin {
			t.Fatalf("removing both root admins at once: %v", err)
		}
		if !w.user(t, "root").Active || !w.user(t, "root2").Admin {
			t.Fatal("a refused batch changed a user")
		}
	})
}

// TestUpsertUsers_KeepsWhatItDoesNotName: an update changes only the
// fields it names. Saving a user with a new password once reset admin to
// false and active to true.
func TestUpsertUsers_KeepsWhatItDoesNotName(t *testing.T) {
	w := newUsersWorld(t)
	w.upsert(t, store.UserUpdate{Username: "boss", Name: "县管理员", Unit: "411002", Admin: new(true), Active: new(false), PasswordHash: "old"})
	w.upsert(t, store.UserUpdate{Username: "boss", PasswordHash: "new"})
	got := w.user(t, "boss")
	if !got.Admin || got.Active || got.Name != "县管理员" || got.Unit != "411002" || got.Role != syncproto.RoleCounty || got.PasswordHash != "new" {
		t.Fatalf("after a password change: %+v", got)
	}
	w.upsert(t, store.UserUpdate{Username: "boss", Name: "新名字"})
	if got := w.user(t, "boss"); !got.Admin || got.Active || got.Name != "新名字" || got.PasswordHash != "new" {
		t.Fatalf("after a rename: %+v", got)
	}
	t.Run("NewUserNeedsNameUnitPassword", func(t *testing.T) {
		for field, upd := range map[string]store.UserUpdate{
			"users[0].password": {Username: "n1", Name: "新人", Unit: "4110"},
			"users[0].name":     {Username: "n1", Unit: "4110", PasswordHash: "x"},
			"users[0].unit":     {Username: "n1", Name: "新人", PasswordHash: "x"},
		} {
			_, err := w.st.UpsertUsers(context.Background(), w.system, []store.UserUpdate{upd})
			if e := syncproto.AsError(err); e == nil || e.Code != syncproto.CodeInvalidRequest || e.Details["field"] != field {
				t.Errorf("new user without %s: %v", field, err)
			}
		}
	})
}
