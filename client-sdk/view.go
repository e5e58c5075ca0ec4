package clientsdk

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Warning is a warning as the person sees it: the server's state with their
// unsent ops applied on top, and those ops' states. Its LastReturn says
// why a lead sent the work back and who did; LastEscalation the newest
// request for help and the county's answer.
type Warning struct {
	syncproto.Warning
	// Overdue is true when it is still open past its deadline.
	Overdue bool
	// Ops are this warning's ops not yet confirmed by a pull.
	Ops []OpStatus
}

// Filter narrows a list. Zero fields match everything.
type Filter struct {
	// Status matches any of these statuses.
	Status []string
	// Overdue, when set, matches overdue (true) or not overdue (false).
	Overdue *bool
	// Risk matches one risk.
	Risk string
	// Text matches a part of the name or address, or the end of the phone.
	Text string
	// Pending matches warnings with unsent ops.
	Pending bool
}

func (f *Filter) match(w *Warning) bool {
	if len(f.Status) > 0 && !slices.Contains(f.Status, w.Status) {
		return false
	}
	if f.Overdue != nil && *f.Overdue != w.Overdue {
		return false
	}
	if f.Risk != "" && f.Risk != w.Risk {
		return false
	}
	if f.Pending && len(w.Ops) == 0 {
		return false
	}
	if t := strings.TrimSpace(f.Text); t != "" {
		if !strings.Contains(w.Name, t) && !strings.Contains(w.Address, t) && !strings.HasSuffix(w.Phone, t) {
			return false
		}
	}
	return true
}

// Warnings lists the warnings in scope that match f, most urgent first:
// overdue, then by deadline.
func (c *Client) Warnings(f Filter) []Warning {
	now := c.now()
	c.mu.RLock()
	byWarning := c.replica.pendingByWarning()
	env := c.replica.env(now)
	out := make([]Warning, 0, len(c.replica.warnings))
	for id, w := range c.replica.warnings {
		v := viewOf(w, byWarning[id], env, now)
		if f.match(&v) {
			out = append(out, v)
		}
	}
	// A warning only pending ops know of (none yet) is not listed: ops act
	// on warnings the device pulled.
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Warning) int {
		if a.Overdue != b.Overdue {
			if a.Overdue {
				return -1
			}
			return 1
		}
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Warning returns one warning with its attempts, and false when it is not
// on this device.
func (c *Client) Warning(id string) (Warning, bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.replica.warnings[id]
	if w == nil {
		return Warning{}, false
	}
	return c.replica.view(w, now), true
}

// AllowedActions lists what the signed-in user may do on a warning now
// (syncproto.Action* values, as syncproto.AllowedActions gives them), its
// pending ops applied: an app offers these actions and no others. It is
// empty for a warning not on this device.
func (c *Client) AllowedActions(warningID string) []string {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.replica.warnings[warningID]
	if w == nil {
		return nil
	}
	v := c.replica.view(w, now)
	return syncproto.AllowedActions(&v.Warning, c.replica.env(now).Actor)
}

// view applies pending ops to the server state with the same Apply the
// server runs. An op Apply refuses stays listed (the server decides) but
// changes nothing here.
func viewOf(w *syncproto.Warning, pending []*localstore.PendingOp, env syncproto.Env, now time.Time) Warning {
	cur := w
	v := Warning{}
	for _, p := range pending {
		e := env
		e.Version = cur.Version
		if res, err := syncproto.Apply(cur, &p.Op, e); err == nil && res.Changed {
			cur = res.Warning
		}
		v.Ops = append(v.Ops, statusOf(p))
	}
	// A shallow copy: its slices are shared with the SDK's copy and must
	// be treated as read-only, which keeps a list of 10,000 cheap.
	v.Warning = *cur
	v.Overdue = cur.Overdue(now)
	return v
}

// Units lists the directory's units (township, county and center devices).
func (c *Client) Units() []syncproto.Unit {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := slices.AppendSeq(make([]syncproto.Unit, 0, len(c.replica.units)), maps.Values(c.replica.units))
	slices.SortFunc(out, func(a, b syncproto.Unit) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// Cadres lists the village users of the directory, for the assignment
// picker.
func (c *Client) Cadres() []syncproto.DirectoryUser {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := slices.AppendSeq(make([]syncproto.DirectoryUser, 0, len(c.replica.users)), maps.Values(c.replica.users))
	slices.SortFunc(out, func(a, b syncproto.DirectoryUser) int { return strings.Compare(a.Unit+a.Username, b.Unit+b.Username) })
	return out
}
