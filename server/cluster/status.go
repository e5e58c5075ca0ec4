package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fieldsync/fieldsync/syncproto"
)

// States a node reports.
const (
	StateLeader    = "leader"
	StateFollower  = "follower"
	StateCandidate = "candidate"
	StateStopped   = "stopped"
)

// Status is a node's view of its cluster, for readyz, metrics and
// `fieldsyncd cluster status`.
type Status struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	State string `json:"state"`
	// Leader is the leader's id and address as this node knows them,
	// empty when it knows none.
	LeaderID   string `json:"leader_id,omitempty"`
	LeaderAddr string `json:"leader_addr,omitempty"`
	// Quorum: this node is the leader, or follows one it heard from
	// within the leader lease; without it the node refuses writes.
	Quorum bool   `json:"quorum"`
	Term   uint64 `json:"term"`
	// CommitIndex is the last entry this node knows committed,
	// AppliedIndex the last its store applied; Lag is how far the
	// follower's raft is behind what it knows committed.
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	// LastContact is how long ago a follower last heard from its
	// leader.
	LastContact time.Duration `json:"last_contact_ns"`
	// Servers are the members of the cluster's configuration.
	Servers []Peer `json:"servers,omitempty"`
}

// Status reads the node's state now.
func (n *Node) Status() Status {
	s := Status{ID: n.cfg.NodeID, Addr: n.cfg.RaftAddr, State: StateStopped}
	if n.raft == nil || n.stopped() != nil {
		return s
	}
	switch n.raft.State() {
	case raft.Leader:
		s.State = StateLeader
	case raft.Follower:
		s.State = StateFollower
	case raft.Candidate:
		s.State = StateCandidate
	}
	addr, id := n.raft.LeaderWithID()
	s.LeaderID, s.LeaderAddr = string(id), string(addr)
	s.Term = n.raft.CurrentTerm()
	s.CommitIndex = n.raft.CommitIndex()
	s.AppliedIndex = n.st.AppliedIndex()
	if applied := n.raft.AppliedIndex(); s.CommitIndex > applied {
		s.Lag = s.CommitIndex - applied
	}
	switch s.State {
	case StateLeader:
		s.Quorum = true
	case StateFollower:
		if last := n.raft.LastContact(); !last.IsZero() {
			s.LastContact = time.Since(last)
			s.Quorum = s.LeaderID != "" && s.LastContact < 2*n.heartbeat()
		}
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			s.Servers = append(s.Servers, Peer{ID: string(srv.ID), Addr: string(srv.Address)})
		}
	}
	return s
}

// Leads reports whether this node is the cluster's leader now: the upkeep
// that decides for the whole store runs there only (app.Config.Leads).
func (n *Node) Leads() bool {
	return n.raft != nil && n.stopped() == nil && n.raft.State() == raft.Leader
}

func (n *Node) heartbeat() time.Duration {
	if n.cfg.HeartbeatTimeout > 0 {
		return n.cfg.HeartbeatTimeout
	}
	return raft.DefaultConfig().HeartbeatTimeout
}

// WaitCaughtUp returns once the node follows or leads a cluster and its
// store has applied every write the cluster acknowledged before: before
// it, a node that joined new or was wiped holds nothing, and a server on
// it would find no admin and no keys and try to make them, or answer a
// user's sign-in with 401.
//
// What raft says is not enough. Its applied index counts the entries it
// handed to the state machine, not those the store applied, and its commit
// index is what this node knows committed: a node catching up learns it
// one message of entries (64) at a time. So a follower asks the leader
// for the index its store applied (every write acknowledged anywhere was
// applied on the leader first) and waits to apply as far; the leader
// waits for a raft barrier, which returns once its state machine applied
// everything before it. It checks again at each apply, and every few
// milliseconds for the leader's contact.
func (n *Node) WaitCaughtUp(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// target is the leader's applied index, once known.
	var target uint64
	known := false
	for {
		n.fsm.mu.Lock()
		next := n.fsm.progress
		n.fsm.mu.Unlock()
		s := n.Status()
		if s.Quorum && s.Lag == 0 && s.CommitIndex > 0 && s.AppliedIndex > 0 {
			switch {
			case s.State == StateLeader:
				if n.raft.Barrier(n.cfg.ApplyTimeout).Error() == nil {
					return nil
				}
			case !known:
				target, known = n.leaderApplied(ctx, s.LeaderAddr)
			}
			if known && s.AppliedIndex >= target {
				return nil
			}
		}
		if err := n.stopped(); err != nil {
			return err
		}
		select {
		case <-next:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting to catch up: %w", ctx.Err())
		}
	}
}

// CatchUp returns once this node's store has applied every write the
// leader's store had applied when asked: for a read that found nothing
// where a write made through another node a moment ago may be, such as a
// sign-in with an account or password just made (app.Config.CatchUp). It
// is WaitCaughtUp's catching up, asked once: the leader waits for a raft
// barrier, since one just elected may not have applied yet what its
// predecessor acknowledged (barrier); a follower asks
// the leader over the cluster port how far its store applied and waits to
// apply as far. A node that knows no leader within the lease (no quorum),
// or whose leader does not answer, returns an error at once: it cannot
// tell how far to go, and the caller answers from what it has. ctx bounds
// the wait.
func (n *Node) CatchUp(ctx context.Context) error {
	if n.raft == nil {
		return errors.New("cluster: the node is not started")
	}
	if err := n.stopped(); err != nil {
		return err
	}
	s := n.Status()
	switch {
	case s.State == StateLeader:
		return n.barrier(ctx)
	case !s.Quorum:
		return errors.New("cluster: no leader to catch up with")
	}
	target, ok := n.leaderApplied(ctx, s.LeaderAddr)
	if !ok {
		return errors.New("cluster: the leader did not say how far it applied")
	}
	return n.waitApplied(ctx, target)
}

// barrier returns once the leader's store has applied every entry raft
// committed before the call: a leader just elected applies its
// predecessor's last entries (writes acknowledged on other nodes) after
// it wins, so even the leader waits. A raft barrier is an entry of the
// log; it is asked for only when a read found nothing (a failed sign-in).
// The barrier's own wait, which only raft can end, is left behind when
// ctx ends first; raft ends it at the apply or at shutdown.
func (n *Node) barrier(ctx context.Context) error {
	f := n.raft.Barrier(n.cfg.ApplyTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("cluster: a barrier on the leader: %w", err)
		}
		return nil
	case <-n.life.Done():
		return errors.New("cluster: the node is closing")
	case <-ctx.Done():
		return fmt.Errorf("cluster: the leader catching up with its own log: %w", ctx.Err())
	}
}

// waitApplied returns once the store has applied index, waking at each
// entry or snapshot this node applies.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		n.fsm.mu.Lock()
		next := n.fsm.progress
		n.fsm.mu.Unlock()
		if n.st.AppliedIndex() >= index {
			return nil
		}
		if err := n.stopped(); err != nil {
			return err
		}
		select {
		case <-next:
		case <-n.life.Done():
			return errors.New("cluster: the node is closing")
		case <-ctx.Done():
			return fmt.Errorf("cluster: catching up to index %d (at %d): %w", index, n.st.AppliedIndex(), ctx.Err())
		}
	}
}

// leaderApplied asks the node at addr, over its cluster port, for the
// index its store applied once it applied all its log committed (a
// barrier: a new leader's store may be behind what was acknowledged); ok
// is false when it did not answer as the
// leader (the caller asks again later).
func (n *Node) leaderApplied(ctx context.Context, addr string) (index uint64, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	resp, err := control(ctx, addr, n.cfg.Secret, ControlRequest{Op: OpStatus, Barrier: true})
	if err == nil && resp.Error != "" {
		err = errors.New(resp.Error)
	}
	if err != nil {
		// The caller asks again every few milliseconds: one line a
		// while, not one a try, through a long outage.
		if now := time.Now().UnixNano(); now-n.askWarned.Load() > int64(10*time.Second) {
			n.askWarned.Store(now)
			n.log.Warn("cluster: asking the leader how far it applied failed", "leader", addr, "err", err)
		}
		return 0, false
	}
	if resp.Status.State != StateLeader {
		return 0, false
	}
	return resp.Status.AppliedIndex, true
}

// Health is the node's state as readyz tells it.
func (n *Node) Health() syncproto.ClusterHealth {
	s := n.Status()
	return syncproto.ClusterHealth{Role: s.State, Leader: s.LeaderID, Quorum: s.Quorum, Lag: s.Lag, AppliedIndex: s.AppliedIndex}
}
