package clientsdk

import (
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// What the server made of this device's ops, computed on the phone
// (PROTOCOL.md section 4, have and kept). After a push is acknowledged the
// device knows everything the server's rules used to apply its ops, but
// for what the server's directory says: the op, the state it was made on,
// its result's version, and the batch's received_at. It computes the state
// the server now holds, hashes it, and offers the hash in its next pull;
// the server leaves the put out when the hash is its own, and the phone
// keeps the state it computed. Whatever the phone got wrong (a name it
// could not know, a photo it thought missing, another device's op in
// between) only means the hash differs and the server sends the state.

// AppliedOp is an op the server applied, with what its push's answer said:
// the op's result version and the batch's received_at.
type AppliedOp struct {
	Op         *syncproto.Op
	Version    uint64
	ReceivedAt time.Time
}

// Expect is what the device knows, besides its ops, of what the server's
// rules look up when they apply them.
type Expect struct {
	// Actor is the device's user as the server knows them (the server
	// takes role and unit from its own record of the user).
	Actor syncproto.Actor
	// Name is the user's name, which the server writes beside their
	// reviews and escalations.
	Name string
	// Dir is the device's directory (a lead's), or nil.
	Dir syncproto.Directory
	// PhotoHeld reports whether the server holds a photo a new attempt
	// names; nil: it holds none of them yet (photos go after ops).
	PhotoHeld func(sha256 string) bool
}

// ExpectedState is the state the server holds of base's warning after
// ops, the device's ops on it that the server applied, in client_seq
// order: base is the warning as the device last pulled it, and each op
// must have been made on it (BaseVersion is base's version). It returns
// false when the device cannot tell: base is missing or a summary, an op
// was made on another version, lacks its answer, or the rules give it
// another outcome here than the server's answer said.
//
// The state is a prediction: PullRequest.Have offers it with its hash
// (syncproto.StateHash), and the server keeps it only when it is its own.
func ExpectedState(base *syncproto.Warning, ops []AppliedOp, e Expect) (*syncproto.Warning, bool) {
	if base == nil || base.Summary || len(ops) == 0 {
		return nil, false
	}
	dir := selfDirectory{Directory: e.Dir, self: syncproto.DirectoryUser{ID: e.Actor.UserID, Name: e.Name, Unit: e.Actor.Unit, Active: true}}
	state := base
	for _, a := range ops {
		op := a.Op
		if op.WarningID != base.ID || op.BaseVersion != base.Version || a.Version == 0 || a.ReceivedAt.IsZero() {
			return nil, false
		}
		p := syncproto.ApplyPushed(state, op, syncproto.Env{Actor: e.Actor, Version: a.Version, Now: a.ReceivedAt, Dir: dir})
		if p.Result.Status != syncproto.StatusApplied || p.Result.Version != a.Version {
			return nil, false
		}
		if p.Warning != nil {
			state = p.Warning
		}
	}
	if state == base {
		return nil, false
	}
	state.MissingPhotos = missingAfter(base, state, e.PhotoHeld)
	return state, true
}

// missingAfter is what the server will list as missing of after's
// photos, as the server lists them (every attempt's, in order): those
// base listed, and those only a new attempt names that the server does
// not hold.
func missingAfter(base, after *syncproto.Warning, held func(string) bool) []string {
	missing := make(map[string]bool, len(base.MissingPhotos))
	for _, p := range base.MissingPhotos {
		missing[p] = true
	}
	known := map[string]bool{}
	for _, a := range base.Attempts {
		for _, p := range a.Photos {
			known[p] = true
		}
	}
	var out []string
	for _, a := range after.Attempts {
		for _, p := range a.Photos {
			if missing[p] || !known[p] && (held == nil || !held(p)) {
				out = append(out, p)
			}
		}
	}
	return out
}

// selfDirectory is a device's directory that also knows the device's own
// user: a cadre's phone has no directory, yet the server names the cadre
// beside their escalations.
type selfDirectory struct {
	syncproto.Directory
	self syncproto.DirectoryUser
}

func (d selfDirectory) Unit(code string) (syncproto.Unit, bool) {
	if d.Directory == nil {
		return syncproto.Unit{}, false
	}
	return d.Directory.Unit(code)
}

func (d selfDirectory) User(id string) (syncproto.DirectoryUser, bool) {
	if d.Directory != nil {
		if u, ok := d.Directory.User(id); ok {
			return u, true
		}
	}
	if id == "" || id != d.self.ID {
		return syncproto.DirectoryUser{}, false
	}
	return d.self, true
}

func (d selfDirectory) SoleActiveCadre(unit string) (string, bool) {
	if d.Directory == nil {
		return "", false
	}
	return d.Directory.SoleActiveCadre(unit)
}

// candidate is a state the device computed (ExpectedState) and offers in
// its next pull's have.
type candidate struct {
	w    *syncproto.Warning
	have syncproto.Have
}

// noteApplied remembers the state the server made of the device's ops
// on each warning a push touched, as far as the device can compute it,
// for the next pull's have. ops are the pushed batch, resp its answer,
// already settled into the outbox. Only for full-detail pulls: a summary
// pull ignores have. Callers hold c.mu.
func (c *Client) noteApplied(ops []syncproto.Op, resp *syncproto.PushResponse, detail string) {
	if resp.ReceivedAt.IsZero() || detail == syncproto.DetailSummary {
		return
	}
	if c.candidates == nil {
		c.candidates, c.receivedAt = map[string]candidate{}, map[string]time.Time{}
	}
	for _, r := range resp.Results {
		if r.Status == syncproto.StatusApplied && r.Code == "" {
			c.receivedAt[r.OpID] = resp.ReceivedAt
		}
	}
	r := &c.replica
	byWarning := r.pendingByWarning()
	inOutbox := make(map[string]bool, len(r.outbox))
	for _, p := range r.outbox {
		inOutbox[p.Op.ID] = true
	}
	for id := range c.receivedAt {
		if !inOutbox[id] {
			delete(c.receivedAt, id)
		}
	}
	st := r.state
	e := Expect{
		Actor: syncproto.Actor{UserID: st.User.ID, Role: st.User.Role, Unit: st.User.Unit, DeviceID: st.DeviceID},
		Name:  st.User.Name, Dir: syncproto.MapDirectory{Units: r.units, Users: r.users},
		PhotoHeld: func(sum string) bool { return r.photos[sum].Uploaded },
	}
	touched := map[string]bool{}
	for i := range ops {
		touched[ops[i].WarningID] = true
	}
	for id := range touched {
		delete(c.candidates, id)
		// The ops on the warning the server applied, up to the first it
		// has not answered yet (or whose answer this session lacks).
		var chain []AppliedOp
		for _, p := range byWarning[id] {
			at, ok := c.receivedAt[p.Op.ID]
			if p.State != localstore.OpApplied || !ok {
				break
			}
			chain = append(chain, AppliedOp{Op: &p.Op, Version: p.Version, ReceivedAt: at})
		}
		w, ok := ExpectedState(r.warnings[id], chain, e)
		if !ok {
			continue
		}
		hash, err := syncproto.StateHash(w)
		if err != nil {
			continue
		}
		c.candidates[id] = candidate{w: w, have: syncproto.Have{ID: id, Version: w.Version, Hash: hash}}
	}
}

// offer is the have of the next pull page, at most limit entries, and
// the candidates it names: none for a pull from nothing (the server
// ignores have there) or a summary pull.
func (c *Client) offer(cursor, detail string, limit int) ([]syncproto.Have, map[string]candidate) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if cursor == "" || c.replica.state.ResetPending || detail == syncproto.DetailSummary || len(c.candidates) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = syncproto.DefaultPullLimit
	}
	have := make([]syncproto.Have, 0, min(limit, len(c.candidates)))
	offered := make(map[string]candidate, cap(have))
	for id, cand := range c.candidates {
		if len(have) == limit {
			break
		}
		have = append(have, cand.have)
		offered[id] = cand
	}
	return have, offered
}

// settleCandidates forgets the candidates a stored page answered: those
// it kept (now the replica's state) and those it carried a change of.
// After the last page of a pull, or a reset, none is of use any more.
// Callers hold c.mu.
func (c *Client) settleCandidates(resp *syncproto.PullResponse, reset bool) {
	if reset || !resp.More {
		clear(c.candidates)
		return
	}
	for _, id := range resp.Kept {
		delete(c.candidates, id)
	}
	for _, ch := range resp.Changes {
		if ch.Entity == syncproto.EntityWarning {
			delete(c.candidates, ch.ID)
		}
	}
}
