package app

import "github.com/fieldsync/fieldsync/syncproto"

// AllowedActions lists what p may do on warning id now, by
// syncproto.AllowedActions on its stored state. It reads no personal data
// out, so it is not audited. The console checks an action against it
// before it pushes, so that an action the state refuses never enters the
// log as if it had been tried. It returns invalid_request for a malformed
// id, and not_found for a warning p may not read, as for one that does
// not exist.
func (a *App) AllowedActions(p Principal, id string) ([]string, error) {
	if !syncproto.ValidUUID(id) {
		return nil, syncproto.InvalidField("id", "a warning id is a lowercase UUID")
	}
	w, err := a.store.Warning(id)
	if err != nil {
		return nil, err
	}
	if w == nil || !syncproto.CanRead(p.Actor, w) {
		return nil, syncproto.Errorf(syncproto.CodeNotFound, "warning %s does not exist", id)
	}
	return syncproto.AllowedActions(w, p.Actor), nil
}
