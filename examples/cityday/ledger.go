package main

import (
	"cmp"
	"slices"
	"sync"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ledger is the simulation's own count of what happened: the warnings the
// feed created, and every op whose final state in its device's SDK was
// applied. It never reads a warning's state from the server.
type ledger struct {
	mu       sync.Mutex
	warnings map[string]*entry
	order    []string
	ops      map[string]*opCount
}

// entry is what the ledger knows of one warning.
type entry struct {
	id, externalID string
	// feedUnit is where the feed addressed it; its county never changes.
	feedUnit string
	// unit is where it is now, as far as the ledger's ops moved it.
	unit string
	// assigned: the feed or a dispatch auto-assigned it, or an assign op
	// applied.
	assigned     bool
	dispatched   bool
	attempts     []ledgerAttempt
	approves     int
	returns      int
	dispatchedBy string
	assignedTo   string
}

// ledgerAttempt is an applied dissuasion.recorded op.
type ledgerAttempt struct {
	device    string
	clientSeq uint64
	id        string
	outcome   string
	reached   bool
	lossFen   int64
}

// opCount counts one kind of op (an op type, and a review's decision).
type opCount struct {
	made, applied, rejected int
	codes                   map[string]int
}

// trackedOp is an op a device made and what the simulation meant by it.
type trackedOp struct {
	st       clientsdk.OpStatus
	kind     string // op type, or warning.reviewed/approve|return
	attempt  clientsdk.Attempt
	unit     string
	assignee string
}

func newLedger() *ledger {
	return &ledger{warnings: map[string]*entry{}, ops: map[string]*opCount{}}
}

// received enters a warning the feed created.
func (l *ledger) received(id string, row *syncproto.FeedWarning, autoAssigned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warnings[id] = &entry{
		id: id, externalID: row.ExternalID, feedUnit: row.Unit, unit: row.Unit,
		// The center imports it: anything below the city is dispatched
		// on arrival.
		dispatched: row.Unit != cityCode,
		assigned:   autoAssigned,
	}
	l.order = append(l.order, id)
}

// made counts an op a device enqueued.
func (l *ledger) made(kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count(kind).made++
}

func (l *ledger) count(kind string) *opCount {
	c := l.ops[kind]
	if c == nil {
		c = &opCount{codes: map[string]int{}}
		l.ops[kind] = c
	}
	return c
}

// settle looks at the ops a device is tracking after a sync: an op in the
// rejected list was rejected; one still in the outbox is not done; one in
// neither was applied and confirmed by a pull. It returns the ops still
// in flight.
func (l *ledger) settle(a *actor, cadres map[string]int) []trackedOp {
	if len(a.tracked) == 0 {
		return nil
	}
	inOutbox := map[string]bool{}
	for _, o := range a.sdk.Ops() {
		if o.State != localstore.OpRejected {
			inOutbox[o.OpID] = true
		}
	}
	rejected := map[string]clientsdk.OpStatus{}
	for _, o := range a.sdk.Rejected() {
		rejected[o.OpID] = o
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var left []trackedOp
	for _, t := range a.tracked {
		if r, ok := rejected[t.st.OpID]; ok {
			c := l.count(t.kind)
			c.rejected++
			c.codes[r.Code]++
			continue
		}
		if inOutbox[t.st.OpID] {
			left = append(left, t)
			continue
		}
		l.count(t.kind).applied++
		e := l.warnings[t.st.WarningID]
		if e == nil {
			continue // not from the feed: cannot happen
		}
		switch t.st.Type {
		case syncproto.OpDispatched:
			e.unit, e.dispatched, e.dispatchedBy = t.unit, true, a.username
			if syncproto.UnitLevel(t.unit) == syncproto.RoleVillage && cadres[t.unit] == 1 {
				e.assigned = true
			}
		case syncproto.OpAssigned:
			e.assigned, e.assignedTo = true, t.assignee
		case syncproto.OpRecorded:
			e.attempts = append(e.attempts, ledgerAttempt{
				device: a.username, clientSeq: t.st.ClientSeq, id: t.st.OpID,
				outcome: t.attempt.Outcome, reached: t.attempt.Reached, lossFen: t.attempt.LossFen,
			})
		case syncproto.OpReviewed:
			if t.kind == kindApprove {
				e.approves++
			} else {
				e.returns++
			}
		}
	}
	return left
}

// Review kinds in the op counts.
const (
	kindApprove = syncproto.OpReviewed + "/approve"
	kindReturn  = syncproto.OpReviewed + "/return"
)

// ledgerState is what the ledger says one warning came to.
type ledgerState struct {
	dispatched, assigned, reached bool
	outcome                       string
	lossFen                       int64
	resolved, closed              bool
}

// state works out where a warning stands from its applied ops alone.
//
// Each warning's attempts come from one phone, its assignee's, so their
// client_seq order is the server's order. A phone records only on a
// warning that is open in its own view, so after a conclusive attempt it
// waits until a pull shows the lead's return; a lead reviews only a
// warning its view shows resolved, which it can see only after that
// attempt was applied. So the attempts fall into rounds each closed by one
// conclusive outcome, each return ends one round, and the warning is
// resolved when more rounds were closed than returned; closed when an
// approve applied (a lead never returns a closed warning here).
func (e *entry) state() ledgerState {
	st := ledgerState{dispatched: e.dispatched, assigned: e.assigned}
	conclusive := 0
	for _, at := range e.sortedAttempts() {
		if at.reached {
			st.reached = true
		}
		if syncproto.Conclusive(at.outcome) {
			conclusive++
		}
		if syncproto.Conclusive(at.outcome) || !syncproto.Conclusive(st.outcome) {
			st.outcome = at.outcome
		}
		if at.outcome == syncproto.OutcomeAlreadyDefrauded {
			st.lossFen = at.lossFen
		}
	}
	if st.outcome != syncproto.OutcomeAlreadyDefrauded {
		st.lossFen = 0
	}
	st.closed = e.approves > 0
	st.resolved = st.closed || conclusive > e.returns
	return st
}

// sortedAttempts are the applied attempts in their phone's client_seq
// order, which is the server's order.
func (e *entry) sortedAttempts() []ledgerAttempt {
	atts := slices.Clone(e.attempts)
	slices.SortStableFunc(atts, func(a, b ledgerAttempt) int { return cmp.Compare(a.clientSeq, b.clientSeq) })
	return atts
}

// devices returns the devices whose attempts a warning holds.
func (e *entry) devices() []string {
	var out []string
	for _, a := range e.attempts {
		if !slices.Contains(out, a.device) {
			out = append(out, a.device)
		}
	}
	return out
}
