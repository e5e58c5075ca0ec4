package mobile

import (
	"context"
	"strings"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Filter narrows Warnings. The zero Filter (or nil) matches everything.
type Filter struct {
	// Status is a comma-separated list of statuses to match, e.g.
	// "assigned,in_progress"; "" matches any.
	Status string
	// Overdue: 1 matches only overdue warnings, -1 only those not overdue,
	// 0 both.
	Overdue int
	// Risk matches one risk ("high", "medium", "low"); "" matches any.
	Risk string
	// Text matches a part of the name or address, or the end of the
	// phone number.
	Text string
	// PendingOnly matches warnings with work not yet confirmed by the
	// server.
	PendingOnly bool
}

func (f *Filter) sdk() clientsdk.Filter {
	if f == nil {
		return clientsdk.Filter{}
	}
	out := clientsdk.Filter{Status: splitList(f.Status, ","), Risk: strings.TrimSpace(f.Risk), Text: f.Text, Pending: f.PendingOnly}
	switch {
	case f.Overdue > 0:
		t := true
		out.Overdue = &t
	case f.Overdue < 0:
		t := false
		out.Overdue = &t
	}
	return out
}

// Warnings lists the warnings on this device that match f (nil: all),
// most urgent first: overdue ones, then by deadline. It reads only local
// data.
func (c *Client) Warnings(f *Filter) *WarningList {
	list := c.sdk.Warnings(f.sdk())
	rejected := c.rejectedByWarning()
	n := c.names()
	out := &WarningList{items: make([]*Warning, len(list))}
	for i := range list {
		out.items[i] = newWarning(&list[i], rejected[list[i].ID], n)
	}
	return out
}

// Warning returns one warning with its attempts, reviews, flags and ops.
// Errors: not_found when it is not on this device (never pulled, or it
// left the user's scope).
func (c *Client) Warning(id string) (*Warning, error) {
	v, ok := c.sdk.Warning(id)
	if !ok {
		return nil, newError(CodeNotFound, "warning "+id+" is not on this device")
	}
	return newWarning(&v, c.rejectedByWarning()[id], c.names()), nil
}

// FetchWarning brings warning id whole from the server (its attempts'
// notes, places and photos, which a summary sync leaves out) and keeps it
// on the phone; it blocks on the network (up to a minute). Call it when a
// lead opens a warning whose Summary is true. Errors: network, not_found
// (not in the user's scope), unauthorized.
func (c *Client) FetchWarning(id string) (*Warning, error) {
	var v clientsdk.Warning
	err := c.call(time.Minute, func(ctx context.Context) error {
		var err error
		v, err = c.sdk.FetchWarning(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newWarning(&v, c.rejectedByWarning()[id], c.names()), nil
}

func (c *Client) rejectedByWarning() map[string][]clientsdk.OpStatus {
	m := map[string][]clientsdk.OpStatus{}
	for _, o := range c.sdk.Rejected() {
		m[o.WarningID] = append(m[o.WarningID], o)
	}
	return m
}

// AttemptInput is a dissuasion attempt to record. Java: new
// AttemptInput(), then the setters; Swift: MobileAttemptInput().
type AttemptInput struct {
	// Method is "visit", "phone", "video" or "other".
	Method string
	// Reached: the person at risk was spoken to.
	Reached bool
	// Outcome is "dissuaded", "already_defrauded", "not_target" (the
	// warning becomes resolved), "unreachable" or "refused".
	Outcome string
	// LossFen is the money already lost, in fen; only with
	// "already_defrauded", and at most 10^12 (ten billion yuan):
	// RecordAttempt refuses more with invalid_request.
	LossFen int64
	Notes   string
	// HasLocation says Lat, Lng and Accuracy (meters) are set.
	HasLocation bool
	Lat         float64
	Lng         float64
	Accuracy    float64
	// Photos are JPEG or PNG files to attach, one path a line; AddPhoto
	// appends one. They are sealed into the local data at once (the files
	// may be deleted after RecordAttempt returns) and upload separately,
	// never holding back the record.
	Photos string
}

// AddPhoto attaches one more image file.
func (a *AttemptInput) AddPhoto(path string) {
	if strings.TrimSpace(a.Photos) == "" {
		a.Photos = path
		return
	}
	a.Photos = strings.TrimRight(a.Photos, "\n") + "\n" + path
}

// RecordAttempt records a dissuasion attempt on a warning. It returns at
// once with the op in state "pending"; the next Sync sends it. Errors:
// invalid_request (a bad method, outcome or photo), not_logged_in,
// device_revoked, closed.
func (c *Client) RecordAttempt(warningID string, a *AttemptInput) (*OpStatus, error) {
	if a == nil {
		return nil, newError(CodeInvalidRequest, "an AttemptInput is required")
	}
	in := clientsdk.Attempt{
		Method: a.Method, Reached: a.Reached, Outcome: a.Outcome, LossFen: a.LossFen, Notes: a.Notes,
		Photos: splitList(a.Photos, "\n"),
	}
	if a.HasLocation {
		in.Location = &syncproto.Location{Lat: a.Lat, Lng: a.Lng, Accuracy: a.Accuracy}
	}
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.RecordAttempt(warningID, in) })
}

// Dispatch sends a warning down to a unit (its code) in the lead's scope.
// Like every write it returns at once; the server decides at the next
// Sync, and a refusal shows in Rejected.
func (c *Client) Dispatch(warningID, unitCode string) (*OpStatus, error) {
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.Dispatch(warningID, unitCode) })
}

// Assign gives a warning to a village cadre, named by user id or by
// username (as in Cadres).
func (c *Client) Assign(warningID, cadre string) (*OpStatus, error) {
	id := cadre
	for _, u := range c.sdk.Cadres() {
		if strings.EqualFold(u.Username, cadre) {
			id = u.ID
			break
		}
	}
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.Assign(warningID, id) })
}

// Review approves ("approve", from resolved: the warning closes) or
// returns ("return": back to the cadre) a warning's work.
func (c *Client) Review(warningID, decision, comment string) (*OpStatus, error) {
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.Review(warningID, decision, comment) })
}

// Escalate asks for help with a warning, saying why (required).
func (c *Client) Escalate(warningID, reason string) (*OpStatus, error) {
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.Escalate(warningID, reason) })
}

// AllowedActions lists, comma-separated, what the signed-in user may do on
// a warning now: "approve", "return", "assign", "dispatch", "escalate",
// "answer", "record" (in that order); "" for a warning not on this
// device. Offer these actions and no others: the server refuses the rest.
func (c *Client) AllowedActions(warningID string) string {
	return strings.Join(c.sdk.AllowedActions(warningID), ",")
}

// AnswerEscalation replies to a warning's open requests for help (county
// and center users; answer required). The township and the cadre see it
// in Warning.LastEscalation after their next Sync.
func (c *Client) AnswerEscalation(warningID, answer string) (*OpStatus, error) {
	return c.write(func() (clientsdk.OpStatus, error) { return c.sdk.AnswerEscalation(warningID, answer) })
}

// Ops lists this device's ops a pull has not confirmed yet, in order,
// then the rejected ones.
func (c *Client) Ops() *OpList { return newOpList(c.sdk.Ops()) }

// Rejected lists the ops the server refused that the person has not
// dismissed: show each Message, then Dismiss it.
func (c *Client) Rejected() *OpList { return newOpList(c.sdk.Rejected()) }

// Dismiss forgets a rejected op once the person has seen why. Errors:
// not_found, closed.
func (c *Client) Dismiss(opID string) error {
	if c.closed.Load() {
		return newError(CodeClosed, "the client is closed")
	}
	return wrap(c.sdk.Dismiss(opID))
}

// Units lists the units of the lead's scope, for Dispatch (empty on a
// village cadre's device).
func (c *Client) Units() *UnitList {
	units := c.sdk.Units()
	out := &UnitList{items: make([]*Unit, len(units))}
	for i, u := range units {
		out.items[i] = &Unit{Code: u.Code, Name: u.Name, Level: u.Level}
	}
	return out
}

// Cadres lists the village users of the lead's scope, for Assign (empty on
// a village cadre's device).
func (c *Client) Cadres() *CadreList {
	users := c.sdk.Cadres()
	out := &CadreList{items: make([]*Cadre, len(users))}
	for i, u := range users {
		out.items[i] = &Cadre{ID: u.ID, Username: u.Username, Name: u.Name, Unit: u.Unit, Active: u.Active}
	}
	return out
}
