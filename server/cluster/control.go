package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The operator's commands (`fieldsyncd cluster status|add|remove|init`)
// reach a node over the cluster port, as a connection of kind control:
// whoever holds the cluster secret may run them, as whoever holds it may
// join raft. They need no admin account, so they also make a new
// cluster's first admin. One request per connection: a JSON object, then
// the node's JSON answer.

// kindControl is a connection carrying one operator's command.
const kindControl byte = 'C'

// Control operations.
const (
	OpStatus = "status"
	OpAdd    = "add"
	OpRemove = "remove"
	OpInit   = "init"
	// OpRestore restores a backup into the cluster (restore.go): the
	// node answers once whether it takes it, the backup follows, then
	// the node's final answer.
	OpRestore = "restore"
)

// ControlRequest is one operator's command.
type ControlRequest struct {
	Op string `json:"op"`
	// Peer is the node to add (OpAdd) or, by its ID, to remove
	// (OpRemove).
	Peer Peer `json:"peer,omitzero"`
	// Init is what OpInit makes.
	Init *InitRequest `json:"init,omitempty"`
	// Restore is OpRestore's.
	Restore *RestoreRequest `json:"restore,omitempty"`
	// Barrier asks a leader answering OpStatus to apply everything its
	// log committed first (a raft barrier), so that its applied index
	// covers every write the cluster acknowledged: a leader elected a
	// moment ago may not have applied its predecessor's last entries.
	// A follower catching up asks for it; an older node ignores it.
	Barrier bool `json:"barrier,omitempty"`
}

// InitRequest makes a new cluster's root unit and admin, through the log
// (fieldsyncd's `init` on one server).
type InitRequest struct {
	RootCode string `json:"root_code"`
	RootName string `json:"root_name"`
	// AdminPassword crosses the cluster's own network, which carries
	// password hashes in raft's entries as well (docs/CLUSTER.md).
	AdminPassword string `json:"admin_password"`
	// Reset lets an initialized cluster's admin password be set again;
	// without it a second init is refused.
	Reset bool `json:"reset,omitempty"`
}

// ControlResponse is the node's answer.
type ControlResponse struct {
	// Status is the node's own (every operation returns it).
	Status Status `json:"status"`
	// NotLeader: the operation must run on the leader, which is at
	// Status.LeaderAddr.
	NotLeader bool   `json:"not_leader,omitempty"`
	Error     string `json:"error,omitempty"`
	// Ready is OpRestore's first answer: send the backup.
	Ready bool `json:"ready,omitempty"`
	// Restored is what OpRestore restored.
	Restored *RestoreResult `json:"restored,omitempty"`
}

// InitFunc makes the root unit and admin on the node's store (every
// write goes through the log).
type InitFunc func(ctx context.Context, in InitRequest) error

// SetInit gives the node what OpInit runs; without it OpInit is refused.
// Call it before Start.
func (n *Node) SetInit(f InitFunc) { n.init = f }

// serveControl answers one operator's command.
func (n *Node) serveControl(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.ApplyTimeout + 5*time.Second))
	var req ControlRequest
	dec := json.NewDecoder(io.LimitReader(conn, 64<<10))
	if err := dec.Decode(&req); err != nil {
		return
	}
	if req.Op == OpRestore {
		// The backup's transfer sets its own deadlines, each read's; the
		// restore is bounded by RestoreTimeout.
		_ = conn.SetDeadline(time.Time{})
		resp := n.serveRestore(conn, dec, req.Restore)
		_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
		resp.Status = n.Status()
		_ = json.NewEncoder(conn).Encode(resp)
		return
	}
	ctx, cancel := context.WithTimeout(n.life, n.cfg.ApplyTimeout)
	defer cancel()
	resp := n.control(ctx, req)
	resp.Status = n.Status()
	_ = json.NewEncoder(conn).Encode(resp)
}

func (n *Node) control(ctx context.Context, req ControlRequest) ControlResponse {
	var err error
	switch req.Op {
	case OpStatus:
		if req.Barrier && n.Leads() {
			if err := n.barrier(ctx); err != nil {
				return ControlResponse{Error: err.Error()}
			}
		}
		return ControlResponse{}
	case OpAdd, OpRemove:
		if !n.Leads() {
			return ControlResponse{NotLeader: true, Error: "this node is not the leader"}
		}
		if n.restoring.Load() {
			return ControlResponse{Error: "a restore from a backup is running; change the members after it"}
		}
		if req.Peer.ID == "" || req.Op == OpAdd && req.Peer.Addr == "" {
			return ControlResponse{Error: "a node's id (and, to add it, its cluster address) is needed"}
		}
		if req.Op == OpAdd {
			err = n.AddVoter(req.Peer)
			n.log.Info("cluster: node added", "node", req.Peer.ID, "raft_addr", req.Peer.Addr, "err", err)
		} else {
			err = n.RemoveServer(req.Peer.ID)
			n.log.Info("cluster: node removed", "node", req.Peer.ID, "err", err)
		}
	case OpInit:
		switch {
		case n.init == nil:
			err = errors.New("this node cannot make a cluster's admin")
		case req.Init == nil:
			err = errors.New("init needs a root unit and a password")
		default:
			err = n.init(ctx, *req.Init)
		}
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		return ControlResponse{Error: err.Error()}
	}
	return ControlResponse{}
}

// Control sends req to the node at addr over its cluster port, proving
// secret, and returns its answer. An operation that must run on the
// leader (add, remove) is sent on to the leader the node names.
func Control(ctx context.Context, addr string, secret []byte, req ControlRequest) (*ControlResponse, error) {
	resp, err := control(ctx, addr, secret, req)
	if err != nil {
		return nil, err
	}
	if resp.NotLeader {
		leader := resp.Status.LeaderAddr
		if leader == "" || leader == addr {
			return nil, fmt.Errorf("%s: no leader now (no quorum?); try again shortly", addr)
		}
		if resp, err = control(ctx, leader, secret, req); err != nil {
			return nil, err
		}
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("%s (%s): %s", resp.Status.ID, resp.Status.Addr, resp.Error)
	}
	return resp, nil
}

func control(ctx context.Context, addr string, secret []byte, req ControlRequest) (*ControlResponse, error) {
	conn, err := dialAuth(addr, secret, kindControl, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("reach the cluster port %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	var resp ControlResponse
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("%s: no answer: %w", addr, err)
	}
	return &resp, nil
}
