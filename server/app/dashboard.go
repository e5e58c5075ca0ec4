package app

import (
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Todo returns the to-do tally of a unit in the caller's scope (the
// caller's own when unit is empty) and of each of its children: what
// waits for dispatch, assignment, review, an answer to an escalation or a
// flag, and what is overdue now. Township, county and center users may
// read it; it reads one record per unit whatever the number of warnings,
// and no personal data.
func (a *App) Todo(p Principal, unit string) (*store.TodoResponse, error) {
	if !syncproto.IsManager(p.Actor.Role) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "the to-do counts are for township, county and center users")
	}
	if unit == "" {
		unit = p.Actor.Unit
	}
	if syncproto.UnitLevel(unit) == "" {
		return nil, syncproto.InvalidField("unit", "unit must be a unit code")
	}
	if !syncproto.InScope(p.Actor.Unit, unit) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", unit)
	}
	return a.store.Todo(unit, a.store.Now())
}
