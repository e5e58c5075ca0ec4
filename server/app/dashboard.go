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
	unit, err := managedUnit(p, unit, "the to-do counts")
	if err != nil {
		return nil, err
	}
	return a.store.Todo(unit, a.store.Now())
}

// managedUnit is the unit a manager's figures are asked for: unit, or
// their own when empty, which must be in their scope. what names the
// figures in the refusal of a village user.
func managedUnit(p Principal, unit, what string) (string, error) {
	if !syncproto.IsManager(p.Actor.Role) {
		return "", syncproto.Errorf(syncproto.CodeForbidden, "%s are for township, county and center users", what)
	}
	if unit == "" {
		unit = p.Actor.Unit
	}
	if syncproto.UnitLevel(unit) == "" {
		return "", syncproto.InvalidField("unit", "unit must be a unit code")
	}
	if !syncproto.InScope(p.Actor.Unit, unit) {
		return "", syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", unit)
	}
	return unit, nil
}
