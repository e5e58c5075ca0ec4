package clientsdk

import (
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// replica is the local store's contents in memory, so reads never decrypt
// and decode the whole file. Client.mu guards it. The Client writes a
// change to the store and brings the replica in step once the transaction
// has committed; apart from applyChange, which writes a pulled change to
// both, the replica's methods only read and change memory.
type replica struct {
	// state is the sync metadata: device, user, tokens, cursor, next
	// client_seq.
	state localstore.State
	// warnings, units and users are the server's side as pulls left it.
	warnings map[string]*syncproto.Warning
	units    map[string]syncproto.Unit
	users    map[string]syncproto.DirectoryUser
	// outbox holds the ops a pull has not confirmed yet, in client_seq
	// order; rejected those the server refused, until dismissed.
	outbox   []localstore.PendingOp
	rejected []localstore.PendingOp
	// photos are the attempts' photos by SHA-256, uploaded or not.
	photos map[string]localstore.Photo
	// handOver is what a revoked device holds unsent, until handed over.
	handOver []localstore.PendingOp
}

// newReplica is the replica of a store holding only st.
func newReplica(st localstore.State) replica {
	r := replica{state: st, photos: map[string]localstore.Photo{}}
	r.forgetPulled()
	return r
}

// loadReplica reads the whole local store.
func loadReplica(tx *localstore.Tx) (replica, error) {
	st, err := tx.State()
	if err != nil {
		return replica{}, err
	}
	r := newReplica(st)
	if err := tx.EachWarning(func(w *syncproto.Warning) error {
		r.warnings[w.ID] = w
		return nil
	}); err != nil {
		return replica{}, err
	}
	if r.outbox, err = tx.Outbox(); err != nil {
		return replica{}, err
	}
	if r.rejected, err = tx.Rejected(); err != nil {
		return replica{}, err
	}
	units, err := tx.Units()
	if err != nil {
		return replica{}, err
	}
	for _, u := range units {
		r.units[u.Code] = u
	}
	users, err := tx.Users()
	if err != nil {
		return replica{}, err
	}
	for _, u := range users {
		r.users[u.ID] = u
	}
	photos, err := tx.Photos()
	if err != nil {
		return replica{}, err
	}
	for _, p := range photos {
		r.photos[p.SHA256] = p
	}
	if r.state.Revoked {
		r.handOver = unsentOps(r.outbox)
	}
	return r, nil
}

// forgetPulled empties the server's side: a reset or a wipe.
func (r *replica) forgetPulled() {
	r.warnings = map[string]*syncproto.Warning{}
	r.units, r.users = map[string]syncproto.Unit{}, map[string]syncproto.DirectoryUser{}
}

// applyChange writes one change to the store and to the replica.
func (r *replica) applyChange(tx *localstore.Tx, ch syncproto.Change) error {
	switch ch.Entity {
	case syncproto.EntityWarning:
		w, ok := ch.Data.(*syncproto.Warning)
		if ch.Kind == syncproto.ChangePut && ok {
			r.warnings[w.ID] = w
			return tx.PutWarning(w)
		}
		delete(r.warnings, ch.ID)
		return tx.DeleteWarning(ch.ID)
	case syncproto.EntityUnit:
		u, ok := ch.Data.(*syncproto.Unit)
		if ch.Kind == syncproto.ChangePut && ok {
			r.units[u.Code] = *u
			return tx.PutUnit(u)
		}
		delete(r.units, ch.ID)
		return tx.DeleteUnit(ch.ID)
	case syncproto.EntityUser:
		u, ok := ch.Data.(*syncproto.DirectoryUser)
		if ch.Kind == syncproto.ChangePut && ok {
			r.users[u.ID] = *u
			return tx.PutUser(u)
		}
		delete(r.users, ch.ID)
		return tx.DeleteUser(ch.ID)
	}
	// Entities this SDK does not know are ignored, as the protocol says.
	return nil
}

// unsent returns up to n ops the server has not answered yet.
func (r *replica) unsent(n int) []syncproto.Op {
	var ops []syncproto.Op
	for _, p := range r.outbox {
		if p.State == localstore.OpApplied {
			continue
		}
		ops = append(ops, p.Op)
		if len(ops) == n {
			break
		}
	}
	return ops
}

// unsentCount is how many ops the server has not answered yet.
func (r *replica) unsentCount() int {
	n := 0
	for _, p := range r.outbox {
		if p.State != localstore.OpApplied {
			n++
		}
	}
	return n
}

// pendingByWarning groups the outbox by warning, in client_seq order.
func (r *replica) pendingByWarning() map[string][]*localstore.PendingOp {
	m := make(map[string][]*localstore.PendingOp)
	for i := range r.outbox {
		p := &r.outbox[i]
		m[p.Op.WarningID] = append(m[p.Op.WarningID], p)
	}
	return m
}

// view is warning w as the person sees it at now: the server's state with
// this device's pending ops on it applied on top.
func (r *replica) view(w *syncproto.Warning, now time.Time) Warning {
	return viewOf(w, r.pendingByWarning()[w.ID], r.env(now), now)
}

// env is the Apply environment of this device's pending ops.
func (r *replica) env(now time.Time) syncproto.Env {
	st := r.state
	return syncproto.Env{
		Actor: syncproto.Actor{UserID: st.User.ID, Role: st.User.Role, Unit: st.User.Unit, DeviceID: st.DeviceID},
		Now:   now,
		Dir:   syncproto.MapDirectory{Units: r.units, Users: r.users},
	}
}

// photosToSend lists the photos not yet uploaded, oldest first.
func (r *replica) photosToSend() []localstore.Photo {
	var todo []localstore.Photo
	for _, p := range r.photos {
		if !p.Uploaded {
			todo = append(todo, p)
		}
	}
	slices.SortFunc(todo, func(a, b localstore.Photo) int { return a.Added.Compare(b.Added) })
	return todo
}

// photosFailing reports whether a photo waits after a failed try.
func (r *replica) photosFailing() bool {
	for _, p := range r.photos {
		if !p.Uploaded && p.Failures > 0 && p.Failures <= photoRetries {
			return true
		}
	}
	return false
}

// serverHolds reports whether the server has photo p: its attempt left
// the outbox confirmed, and the warning as last pulled does not list the
// photo as missing.
func (r *replica) serverHolds(p localstore.Photo) bool {
	for _, o := range r.outbox {
		if o.Op.WarningID == p.WarningID && slices.Contains(o.Op.Body.Photos, p.SHA256) {
			return false
		}
	}
	w := r.warnings[p.WarningID]
	// A summary's attempts name no photos, so it cannot tell an attempt
	// the server has not yet applied: the photo is sent, to be safe.
	if w == nil || w.Summary || slices.Contains(w.MissingPhotos, p.SHA256) {
		return false
	}
	for _, a := range w.Attempts {
		if slices.Contains(a.Photos, p.SHA256) {
			return true
		}
	}
	return false
}
