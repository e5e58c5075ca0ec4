package clientsdk

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The states an op goes through, as OpStatus.State shows them.
const (
	// OpPending: saved on the phone, not sent yet.
	OpPending = localstore.OpPending
	// OpSent: sent, no answer yet (or the answer was lost).
	OpSent = localstore.OpSent
	// OpApplied: the server applied it; it leaves the list at the next pull.
	OpApplied = localstore.OpApplied
	// OpRejected: the server refused it; Code and Message say why.
	OpRejected = localstore.OpRejected
)

// OpStatus is what a person sees of one thing they did.
type OpStatus struct {
	OpID      string
	WarningID string
	Type      string
	ClientSeq uint64
	// State is pending, sent, applied or rejected.
	State string
	// Code and Message say why the server rejected it.
	Code    string
	Message string
	// Flags the server raised for review (a late or conflicting record).
	Flags []syncproto.Flag
	At    time.Time
}

func statusOf(p *localstore.PendingOp) OpStatus {
	return OpStatus{
		OpID: p.Op.ID, WarningID: p.Op.WarningID, Type: p.Op.Type, ClientSeq: p.Op.ClientSeq,
		State: p.State, Code: p.Code, Message: p.Message, Flags: p.Flags, At: p.Op.At,
	}
}

// Attempt is a dissuasion attempt as the cadre records it.
type Attempt struct {
	Method  string
	Reached bool
	Outcome string
	LossFen int64
	Notes   string
	// Location is optional.
	Location *syncproto.Location
	// Photos are image files (JPEG or PNG) to attach; they upload
	// separately and never hold back the record.
	Photos []string
}

// RecordAttempt records a dissuasion attempt. It returns at once.
func (c *Client) RecordAttempt(warningID string, a Attempt) (OpStatus, error) {
	reached := a.Reached
	body := syncproto.OpBody{
		AttemptID: uuid.Must(uuid.NewV7()).String(), Method: a.Method, Reached: &reached,
		Outcome: a.Outcome, LossFen: a.LossFen, Notes: a.Notes, Location: a.Location,
	}
	var photos []localstore.Photo
	for _, path := range a.Photos {
		p, err := c.savePhoto(path, warningID)
		if err != nil {
			return OpStatus{}, err
		}
		photos = append(photos, p)
		body.Photos = append(body.Photos, p.SHA256)
	}
	return c.enqueue(syncproto.OpRecorded, warningID, body, photos)
}

// savePhoto seals an image file into the local store.
func (c *Client) savePhoto(path, warningID string) (localstore.Photo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return localstore.Photo{}, fmt.Errorf("read photo: %w", err)
	}
	if len(data) > syncproto.MaxBlobBytes {
		return localstore.Photo{}, syncproto.InvalidField("photos", "a photo may be at most %d bytes", syncproto.MaxBlobBytes)
	}
	ct := photoType(data)
	if ct == "" {
		return localstore.Photo{}, syncproto.InvalidField("photos", "a photo must be a JPEG or PNG image")
	}
	sum, err := c.local.SavePhotoFile(data)
	if err != nil {
		return localstore.Photo{}, err
	}
	return localstore.Photo{SHA256: sum, ContentType: ct, WarningID: warningID, Added: c.now().UTC()}, nil
}

func photoType(data []byte) string {
	switch {
	case len(data) > 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff:
		return "image/jpeg"
	case len(data) > 8 && string(data[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	}
	return ""
}

// Dispatch sends a warning down to a unit in the user's scope.
func (c *Client) Dispatch(warningID, unit string) (OpStatus, error) {
	return c.enqueue(syncproto.OpDispatched, warningID, syncproto.OpBody{Unit: unit}, nil)
}

// Assign gives a warning to a village cadre.
func (c *Client) Assign(warningID, assignee string) (OpStatus, error) {
	return c.enqueue(syncproto.OpAssigned, warningID, syncproto.OpBody{Assignee: assignee}, nil)
}

// Review approves or returns a warning's work.
func (c *Client) Review(warningID, decision, comment string) (OpStatus, error) {
	return c.enqueue(syncproto.OpReviewed, warningID, syncproto.OpBody{Decision: decision, Comment: comment}, nil)
}

// Escalate asks for help with a warning; reason is required (an empty
// one is invalid_request at once).
func (c *Client) Escalate(warningID, reason string) (OpStatus, error) {
	return c.enqueue(syncproto.OpEscalated, warningID, syncproto.OpBody{Reason: reason}, nil)
}

// AnswerEscalation replies to a warning's open requests for help: county
// and center users. The township and the cadre read the answer in the
// warning's LastEscalation after their next sync. The answer is required;
// the server rejects the op (invalid_state) if no request is open then.
func (c *Client) AnswerEscalation(warningID, answer string) (OpStatus, error) {
	return c.enqueue(syncproto.OpAnswered, warningID, syncproto.OpBody{Answer: answer}, nil)
}

// enqueue validates an op, gives it the next client_seq, and stores it in
// the outbox (with its photos) in one transaction.
func (c *Client) enqueue(typ, warningID string, body syncproto.OpBody, photos []localstore.Photo) (OpStatus, error) {
	c.mu.Lock()
	if c.replica.state.DeviceID == "" || c.replica.state.User.ID == "" {
		c.mu.Unlock()
		return OpStatus{}, ErrNotLoggedIn
	}
	if c.replica.state.Revoked {
		c.mu.Unlock()
		return OpStatus{}, ErrRevoked
	}
	var base uint64
	if w := c.replica.warnings[warningID]; w != nil {
		base = w.Version
	}
	st := c.replica.state
	p := localstore.PendingOp{State: localstore.OpPending, Op: syncproto.Op{
		ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: st.NextSeq, Type: typ, WarningID: warningID,
		BaseVersion: base, At: c.now().UTC(), Body: body,
	}}
	if err := p.Op.ValidateNew(); err != nil {
		c.mu.Unlock()
		return OpStatus{}, err
	}
	st.NextSeq++
	err := c.local.Update(func(tx *localstore.Tx) error {
		for i := range photos {
			if err := tx.PutPhoto(&photos[i]); err != nil {
				return err
			}
		}
		if err := tx.PutOp(&p); err != nil {
			return err
		}
		return tx.SetState(st)
	})
	if err != nil {
		c.mu.Unlock()
		return OpStatus{}, err
	}
	c.replica.state = st
	c.replica.outbox = append(c.replica.outbox, p)
	for _, ph := range photos {
		c.replica.photos[ph.SHA256] = ph
	}
	c.mu.Unlock()
	c.emit(Event{Kind: EventOps, IDs: []string{p.Op.ID}})
	c.emit(Event{Kind: EventWarnings, IDs: []string{warningID}})
	c.kickBackground()
	return statusOf(&p), nil
}

// Ops lists the ops not yet confirmed by a pull, then the rejected ones.
func (c *Client) Ops() []OpStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]OpStatus, 0, len(c.replica.outbox)+len(c.replica.rejected))
	for i := range c.replica.outbox {
		out = append(out, statusOf(&c.replica.outbox[i]))
	}
	for i := range c.replica.rejected {
		out = append(out, statusOf(&c.replica.rejected[i]))
	}
	return out
}

// Rejected lists the ops the server refused that the person has not
// dismissed yet.
func (c *Client) Rejected() []OpStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]OpStatus, len(c.replica.rejected))
	for i := range c.replica.rejected {
		out[i] = statusOf(&c.replica.rejected[i])
	}
	return out
}

// Dismiss forgets a rejected op once the person has seen why.
func (c *Client) Dismiss(opID string) error {
	c.mu.Lock()
	var found bool
	err := c.local.Update(func(tx *localstore.Tx) error {
		var err error
		found, err = tx.DeleteRejected(opID)
		return err
	})
	if err == nil && found {
		for i := range c.replica.rejected {
			if c.replica.rejected[i].Op.ID == opID {
				c.replica.rejected = append(c.replica.rejected[:i], c.replica.rejected[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !found {
		return syncproto.Errorf(syncproto.CodeNotFound, "no rejected op %s", opID)
	}
	c.emit(Event{Kind: EventOps, IDs: []string{opID}})
	return nil
}

// HandOver lists the ops a revoked device still holds unsent, so they can
// be given to someone who can send them. Photos of a wiped device are gone
// with the rest of its personal data.
func (c *Client) HandOver() []syncproto.Op {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]syncproto.Op, len(c.replica.handOver))
	for i := range c.replica.handOver {
		out[i] = c.replica.handOver[i].Op
	}
	return out
}

// ConfirmHandedOver forgets the unsent ops of a revoked device once the app
// has handed them over; only then can the device sign in again, afresh.
func (c *Client) ConfirmHandedOver() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.replica.state.Revoked {
		return errors.New("only a revoked device hands its ops over")
	}
	err := c.local.Update(func(tx *localstore.Tx) error {
		for _, p := range c.replica.outbox {
			if err := tx.DeleteOp(p.Op.ClientSeq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.replica.outbox, c.replica.handOver = nil, nil
	return nil
}

// unsentOps are the ops the server has not said it applied: what a revoked
// device must hand over.
func unsentOps(outbox []localstore.PendingOp) []localstore.PendingOp {
	var out []localstore.PendingOp
	for _, p := range outbox {
		if p.State != localstore.OpApplied {
			out = append(out, p)
		}
	}
	return out
}
