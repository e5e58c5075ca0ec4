package app

import (
	"cmp"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// AccountsPerPage is the size of a page of the accounts list.
const AccountsPerPage = 50

// AccountQuery picks a page of the accounts of an admin's unit.
type AccountQuery struct {
	// Unit keeps the accounts of this unit and the units under it; the
	// admin's unit when empty.
	Unit string
	// Text keeps the accounts whose username, name, unit name or unit
	// code holds it, ignoring case; all when empty.
	Text string
	// Page counts from 1; 0 is the first, one past the last is the last.
	Page int
}

// AccountPage is a page of accounts and the phones of those on it.
type AccountPage struct {
	Users []store.User
	// Phones are the devices of Users that are not console sessions.
	Phones []store.Device
	// Units names every unit of the admin's unit, by code.
	Units []syncproto.Unit
	// Total counts the accounts the query matches; Page is the page shown
	// and Pages how many there are (at least 1).
	Total, Page, Pages int
}

// AccountsPage returns a page of the accounts of an admin's unit that q
// picks, by unit then username; admins only. A unit outside the admin's
// unit is forbidden, one that does not exist invalid.
func (a *App) AccountsPage(p Principal, q AccountQuery) (*AccountPage, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if q.Unit == "" {
		q.Unit = p.Actor.Unit
	}
	if !syncproto.InScope(p.Actor.Unit, q.Unit) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", q.Unit)
	}
	units, _, err := a.store.Directory(p.Actor.Unit)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(units))
	for _, u := range units {
		names[u.Code] = u.Name
	}
	if _, ok := names[q.Unit]; !ok {
		return nil, syncproto.InvalidField("unit", "unit %q does not exist", q.Unit)
	}
	users, err := a.store.UsersIn(q.Unit)
	if err != nil {
		return nil, err
	}
	if text := strings.ToLower(strings.TrimSpace(q.Text)); text != "" {
		users = slices.DeleteFunc(users, func(u store.User) bool {
			return !strings.Contains(strings.ToLower(u.Username+"\x00"+u.Name+"\x00"+u.Unit+"\x00"+names[u.Unit]), text)
		})
	}
	slices.SortStableFunc(users, func(x, y store.User) int {
		return cmp.Or(cmp.Compare(x.Unit, y.Unit), cmp.Compare(x.Username, y.Username))
	})
	page := &AccountPage{Units: units, Total: len(users), Pages: max(1, (len(users)+AccountsPerPage-1)/AccountsPerPage)}
	page.Page = min(max(q.Page, 1), page.Pages)
	start := (page.Page - 1) * AccountsPerPage
	page.Users = users[start:min(start+AccountsPerPage, len(users))]
	ids := make(map[string]bool, len(page.Users))
	for _, u := range page.Users {
		ids[u.ID] = true
	}
	devices, err := a.store.DevicesOf(ids)
	if err != nil {
		return nil, err
	}
	page.Phones = phones(devices)
	return page, nil
}
