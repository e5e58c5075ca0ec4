package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestUserAdmin_PasswordChangeKeepsAdmin replays the lock-out: the only
// root administrator saves their own account with a new password (and
// their name and unit, as a form sends them). An update without `admin`
// once made the account a plain user, and nobody could administer the
// server any more. Now every field the update does not name is kept.
func TestUserAdmin_PasswordChangeKeepsAdmin(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t, servertest.Options{})
	admin := srv.Admin(t)
	for _, in := range []syncproto.UserInput{
		{Username: app.AdminUsername, Password: "new-admin-password-1"},
		{Username: app.AdminUsername, Name: "Administrator", Unit: unitCity, Password: "new-admin-password-2"},
	} {
		resp, err := admin.UpsertUsers(ctx, []syncproto.UserInput{in})
		if err != nil {
			t.Fatalf("admin changes its own password: %v", err)
		}
		if u := resp.Users[0]; !u.Admin {
			t.Fatalf("after %+v the admin is %+v", in, u)
		}
	}
	// Signed in again with the new password, it still administers.
	again := srv.Login(t, app.AdminUsername, "new-admin-password-2")
	if !again.Login.User.Admin {
		t.Fatalf("login answers %+v", again.Login.User)
	}
	if _, err := again.UpsertUnits(ctx, []syncproto.UnitInput{{Code: unitCounty, Name: "魏都区"}}); err != nil {
		t.Fatalf("the admin administers after changing its password: %v", err)
	}
	if u := srv.User(t, app.AdminUsername); !u.Admin || !u.Active {
		t.Fatalf("stored admin: admin %v, active %v", u.Admin, u.Active)
	}
}

// TestUserAdmin_UpdateKeepsUnnamedFields: an update without `admin` or
// `active` keeps them, whatever they were; an update that names them
// changes them.
func TestUserAdmin_UpdateKeepsUnnamedFields(t *testing.T) {
	ctx := context.Background()
	srv, admin := startWithCityUnits(t)
	if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "countyadmin", Name: "县管理员", Unit: unitCounty, Admin: new(true), Active: new(false), Password: testPassword}}); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, what string, admin, active bool, name string) {
		t.Helper()
		u := srv.User(t, "countyadmin")
		if u.Admin != admin || u.Active != active || u.Name != name || u.Unit != unitCounty {
			t.Fatalf("%s: admin %v active %v name %q unit %s; want admin %v active %v name %q", what, u.Admin, u.Active, u.Name, u.Unit, admin, active, name)
		}
	}
	for _, step := range []struct {
		what         string
		in           syncproto.UserInput
		admin, alive bool
		name         string
	}{
		{"NewPasswordOnly", syncproto.UserInput{Username: "countyadmin", Password: "another-password-1"}, true, false, "县管理员"},
		{"RenameOnly", syncproto.UserInput{Username: "countyadmin", Name: "县级管理员"}, true, false, "县级管理员"},
		{"Enable", syncproto.UserInput{Username: "countyadmin", Active: new(true)}, true, true, "县级管理员"},
		{"Demote", syncproto.UserInput{Username: "countyadmin", Admin: new(false)}, false, true, "县级管理员"},
		{"SameFormAgain", syncproto.UserInput{Username: "countyadmin", Name: "县级管理员", Unit: unitCounty}, false, true, "县级管理员"},
	} {
		if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{step.in}); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		check(t, step.what, step.admin, step.alive, step.name)
	}
}

// TestUserAdmin_OwnRights: nobody can disable, demote or move themselves,
// through the API either. Each attempt is 403 forbidden naming the field
// and the rule, and changes nothing, even the good users of its batch.
// Another root administrator may do it.
func TestUserAdmin_OwnRights(t *testing.T) {
	ctx := context.Background()
	srv, admin := startWithCityUnits(t)
	if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "admin2", Name: "第二管理员", Unit: unitCity, Admin: new(true), Password: testPassword}}); err != nil {
		t.Fatal(err)
	}
	type snapshot struct {
		seq          uint64
		admin, other store.User
	}
	snap := func() snapshot {
		a := srv.User(t, app.AdminUsername)
		o := srv.User(t, "admin2")
		return snapshot{srv.LastSeq(t), *a, *o}
	}
	for _, tc := range []struct {
		name, field string
		self        syncproto.UserInput
	}{
		{"Disable", "users[1].active", syncproto.UserInput{Username: app.AdminUsername, Active: new(false)}},
		{"Demote", "users[1].admin", syncproto.UserInput{Username: app.AdminUsername, Admin: new(false)}},
		{"MoveDown", "users[1].unit", syncproto.UserInput{Username: app.AdminUsername, Unit: unitCounty}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snap()
			// A good change first: the batch is refused whole.
			body := syncproto.UsersRequest{Users: []syncproto.UserInput{{Username: "admin2", Name: "改了名"}, tc.self}}
			r := send(t, srv.URL, rawReq{Path: "/v1/admin/users", Token: admin.Token(), ContentType: syncproto.JSON.MediaType(), Body: mustEncode(t, syncproto.JSON, body)})
			e := wantError(t, r, http.StatusForbidden, syncproto.CodeForbidden)
			wantField(t, e, tc.field)
			if e.Details["reason"] != syncproto.ReasonOwnAccount {
				t.Errorf("details.reason = %v, want %s (%s)", e.Details["reason"], syncproto.ReasonOwnAccount, e.Message)
			}
			if after := snap(); after != before {
				t.Fatalf("a refused change wrote: before %+v, after %+v", before, after)
			}
		})
	}

	// admin2 may disable admin: admin2 stays the root administrator. It
	// cannot then disable itself either.
	admin2 := srv.Login(t, "admin2", testPassword)
	if _, err := admin2.UpsertUsers(ctx, []syncproto.UserInput{{Username: app.AdminUsername, Active: new(false)}}); err != nil {
		t.Fatalf("another admin disables admin: %v", err)
	}
	_, err := admin2.UpsertUsers(ctx, []syncproto.UserInput{{Username: "admin2", Active: new(false)}})
	if e := syncproto.AsError(err); e == nil || e.Code != syncproto.CodeForbidden || e.Details["reason"] != syncproto.ReasonOwnAccount {
		t.Fatalf("the last root admin disables itself: %v", err)
	}
}

// startWithCityUnits starts a server holding the small city's units but
// none of its users, and signs its admin in.
func startWithCityUnits(t *testing.T) (*servertest.Server, *servertest.Device) {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{})
	admin := srv.Admin(t)
	servertest.Load(t, admin.Client, &demo.Tree{Units: servertest.City().Units})
	return srv, admin
}
