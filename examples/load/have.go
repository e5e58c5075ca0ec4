package main

import (
	"context"
	"fmt"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/syncproto"
)

// heldStates is what a phone keeps of its scope with -have, as the SDK
// does: the state of each warning as pulls left it, and the states it
// computed after its last push (clientsdk.ExpectedState), offered in the
// next pull's have so the server leaves them out (PROTOCOL.md section 4).
type heldStates struct {
	states     map[string]*syncproto.Warning
	candidates map[string]candidate
}

// candidate is a state the device computed, and its have entry.
type candidate struct {
	w    *syncproto.Warning
	have syncproto.Have
}

func newHeldStates() *heldStates {
	return &heldStates{states: map[string]*syncproto.Warning{}, candidates: map[string]candidate{}}
}

// baseVersion is the version of warning id the device holds: the
// base_version of an op made on it now (0 without -have).
func (d *device) baseVersion(id string) uint64 {
	if d.held == nil || d.held.states[id] == nil {
		return 0
	}
	return d.held.states[id].Version
}

// notePushed computes, for each warning a push changed, the state the
// server made of the device's ops on it, as the SDK does after a push.
func (d *device) notePushed(ops []syncproto.Op, resp *syncproto.PushResponse) error {
	if d.held == nil || resp.ReceivedAt.IsZero() {
		return nil
	}
	e := clientsdk.Expect{Actor: syncproto.Actor{UserID: d.userID, Role: syncproto.RoleVillage, Unit: d.unit, DeviceID: d.id}}
	bySeq := make(map[uint64]syncproto.Result, len(resp.Results))
	for _, r := range resp.Results {
		bySeq[r.ClientSeq] = r
	}
	chains := map[string][]clientsdk.AppliedOp{}
	var order []string
	for i := range ops {
		op := &ops[i]
		r, ok := bySeq[op.ClientSeq]
		if !ok || r.Status != syncproto.StatusApplied || r.Code != "" {
			// Not applied by this push: the server's state of the
			// warning is not the device's to compute.
			chains[op.WarningID] = nil
			continue
		}
		if _, seen := chains[op.WarningID]; !seen {
			order = append(order, op.WarningID)
		} else if chains[op.WarningID] == nil {
			continue
		}
		chains[op.WarningID] = append(chains[op.WarningID], clientsdk.AppliedOp{Op: op, Version: r.Version, ReceivedAt: resp.ReceivedAt})
	}
	for _, id := range order {
		delete(d.held.candidates, id)
		w, ok := clientsdk.ExpectedState(d.held.states[id], chains[id], e)
		if !ok {
			continue
		}
		h, err := syncproto.StateHash(w)
		if err != nil {
			return err
		}
		d.held.candidates[id] = candidate{w: w, have: syncproto.Have{ID: id, Version: w.Version, Hash: h}}
	}
	return nil
}

// have is the next pull's have: the computed states' versions and hashes.
func (d *device) have() []syncproto.Have {
	if d.held == nil || len(d.held.candidates) == 0 {
		return nil
	}
	have := make([]syncproto.Have, 0, min(len(d.held.candidates), syncproto.DefaultPullLimit))
	for _, c := range d.held.candidates {
		if len(have) == syncproto.DefaultPullLimit {
			break
		}
		have = append(have, c.have)
	}
	return have
}

// pullPage pulls the page after the device's cursor, offering the states
// it holds, moves the cursor on and keeps what the page brought. took is
// the pull's round trip. resp is nil when the pull failed; a page it
// cannot keep is an error beside it.
func (d *device) pullPage(ctx context.Context) (resp *syncproto.PullResponse, took time.Duration, err error) {
	t0 := time.Now()
	resp, err = d.c.Pull(ctx, syncproto.PullRequest{DeviceID: d.id, Cursor: d.cursor, Have: d.have()})
	if err != nil {
		return nil, 0, fmt.Errorf("pull: %w", err)
	}
	took = time.Since(t0)
	d.cursor = resp.Cursor
	return resp, took, d.applyPage(resp)
}

// applyPage keeps what a pull page brought: the states it carried, and
// for the warnings it kept the states the device computed.
func (d *device) applyPage(resp *syncproto.PullResponse) error {
	if d.held == nil {
		return nil
	}
	if resp.Reset {
		clear(d.held.states)
	}
	for _, id := range resp.Kept {
		c, ok := d.held.candidates[id]
		if !ok {
			return fmt.Errorf("the server kept warning %s, which the pull did not offer", id)
		}
		d.held.states[id] = c.w
	}
	for _, ch := range resp.Changes {
		if ch.Entity != syncproto.EntityWarning {
			continue
		}
		delete(d.held.candidates, ch.ID)
		if w, ok := ch.Data.(*syncproto.Warning); ok && ch.Kind == syncproto.ChangePut {
			d.held.states[ch.ID] = w
		} else {
			delete(d.held.states, ch.ID)
		}
	}
	if !resp.More {
		clear(d.held.candidates)
	}
	return nil
}
