package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Peer is one member of a cluster: its node id and its cluster address.
type Peer struct {
	ID   string
	Addr string
}

// Config is one node's part in a cluster.
type Config struct {
	// NodeID names the node for ever; RaftAddr is the address its cluster
	// port listens on, and the one the other nodes reach it at (port 0
	// picks one, for tests).
	NodeID   string
	RaftAddr string
	// Secret is the cluster secret every node holds (LoadSecret).
	Secret []byte
	// Dir is the node's data directory: raft's log (RaftFile) and its
	// snapshots (SnapshotDir) go beside the store's file.
	Dir string
	// Logger receives the node's own lines; RaftLog raft's (discarded
	// when nil).
	Logger  *slog.Logger
	RaftLog io.Writer
	// ApplyTimeout bounds how long a write waits to be committed
	// (10 s when 0).
	ApplyTimeout time.Duration
	// The raft timings and log bounds; raft's defaults when 0, except
	// TrailingLogs (DefaultTrailingLogs): the raft log holds personal
	// data, so it is cut short after each snapshot (docs/CLUSTER.md).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	// RestoreTimeout bounds a restore from a backup once the backup is
	// on the leader (DefaultRestoreTimeout when 0).
	RestoreTimeout time.Duration
	// SnapshotInterval is how often raft checks whether SnapshotThreshold
	// entries have come since its last snapshot (raft's default, 120 s,
	// when 0; raft spreads each check over one to two intervals).
	SnapshotInterval time.Duration
}

const (
	// RaftFile is raft's log and stable store in the data directory.
	RaftFile = "raft.db"
	// SnapshotDir holds raft's snapshots of the store.
	SnapshotDir = "raft-snapshots"
	// DefaultTrailingLogs is how many entries stay in the raft log after
	// a snapshot: enough for a follower a few seconds behind to catch up
	// from the log, short enough that personal data leaves it soon.
	DefaultTrailingLogs = 1024
)

// Node is one node of a cluster: raft, its authenticated port, and the
// store as its state machine.
type Node struct {
	cfg    Config
	log    *slog.Logger
	layer  *streamLayer
	trans  *raft.NetworkTransport
	logs   *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	fsm    *fsm
	raft   *raft.Raft
	st     *store.Store
	notify chan bool
	life   context.Context
	end    context.CancelFunc
	wg     sync.WaitGroup

	// init makes a new cluster's admin (control.go).
	init InitFunc
	// counts are the Stats counters; leaders counts leader changes.
	counts  counters
	leaders *raft.Observer

	// askWarned is when leaderApplied last logged a failure (UnixNano).
	askWarned atomic.Int64

	// restoring is set while a backup is restored on this leader: its
	// writes are refused meanwhile (restore.go).
	restoring atomic.Bool

	// The repair of missing photos (photos.go): repairDue are the photos
	// applied here without their files since the last round, repairFull
	// asks for a round over every photo; repairKick wakes the loop.
	repairMu   sync.Mutex
	repairDue  map[string]struct{}
	repairFull bool
	repairKick chan struct{}

	// failed is set when an entry failed to apply and the node stopped.
	failMu sync.Mutex
	failed error
}

// New opens the node's cluster port. Start runs raft on a store.
func New(cfg Config) (*Node, error) {
	if cfg.NodeID == "" || cfg.RaftAddr == "" {
		return nil, errors.New("cluster: a node needs an id and a cluster address")
	}
	if len(cfg.Secret) < MinSecret {
		return nil, fmt.Errorf("cluster: the cluster secret must have at least %d bytes", MinSecret)
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = DefaultTrailingLogs
	}
	if cfg.RestoreTimeout <= 0 {
		cfg.RestoreTimeout = DefaultRestoreTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RaftLog == nil {
		cfg.RaftLog = io.Discard
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.RaftAddr, err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, repairDue: map[string]struct{}{}, repairKick: make(chan struct{}, 1)}
	n.cfg.RaftAddr = ln.Addr().String()
	n.layer = newStreamLayer(ln, cfg.Secret, cfg.Logger)
	n.life, n.end = context.WithCancel(context.Background())
	return n, nil
}

// Addr is the node's cluster address.
func (n *Node) Addr() string { return n.cfg.RaftAddr }

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Start runs raft with st as its state machine. A node with no raft
// state yet and bootstrap peers starts a new cluster of them (every
// founding node may be given the same list); without peers it waits to
// be added by the leader (AddVoter). st must have been opened with the
// options Wire sets.
func (n *Node) Start(st *store.Store, bootstrap []Peer) error {
	n.st = st
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: n.cfg.RaftLog, Level: hclog.Info, JSONFormat: true})
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: n.layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog})
	n.layer.onForward = n.serveForward
	n.layer.onControl = n.serveControl
	n.layer.onPhotoPut = n.servePhotoPut
	n.layer.onPhotoFetch = n.servePhotoFetch
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.Dir, RaftFile)})
	if err != nil {
		return fmt.Errorf("cluster: open raft log: %w", err)
	}
	n.logs = logs
	if err := os.MkdirAll(filepath.Join(n.cfg.Dir, SnapshotDir), 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(n.cfg.Dir, SnapshotDir), 2, hlog)
	if err != nil {
		return fmt.Errorf("cluster: open snapshots: %w", err)
	}
	n.snaps = snaps
	n.fsm = newFSM(st, n.log, n.fail, &n.counts)
	n.fsm.onRestore = n.repairAll

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.Logger = hlog
	if n.cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	}
	if n.cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = n.cfg.ElectionTimeout
	}
	if n.cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	}
	if n.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	}
	if n.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = n.cfg.SnapshotInterval
	}
	rc.TrailingLogs = n.cfg.TrailingLogs
	// The store keeps its own state across restarts: raft need not
	// restore its latest snapshot unless the store is behind it (a store
	// file lost or older than the snapshot).
	if list, err := snaps.List(); err == nil && len(list) > 0 && st.AppliedIndex() >= list[0].Index {
		rc.NoSnapshotRestoreOnStart = true
	}
	n.notify = make(chan bool, 8)
	rc.NotifyCh = n.notify

	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if !existing && st.AppliedIndex() > 0 {
		// Its applied index counts its own commits, not raft's entries:
		// raft would skip entries below it.
		return errors.New("cluster: this store was written by a single server; a node starts a cluster or joins one with an empty data directory (docs/CLUSTER.md)")
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, logs, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	n.leaders = n.observeLeaders()
	r.RegisterObserver(n.leaders)
	if !existing && len(bootstrap) > 0 {
		var servers []raft.Server
		for _, p := range bootstrap {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	n.wg.Add(2)
	go n.watchLeadership()
	go n.repairPhotos()
	n.repairAll()
	return nil
}

// watchLeadership gives a new cluster its one incarnation: the first
// leader of a state machine that applied nothing proposes it as the first
// entry of the log, so a phone's cursor means the same on every node.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.life.Done():
			return
		case leader := <-n.notify:
			if !leader {
				continue
			}
			// Everything committed before this term is applied here
			// first.
			if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
				n.log.Warn("cluster: barrier after election failed", "err", err)
				continue
			}
			if n.st.AppliedIndex() == 0 {
				if err := n.st.NewIncarnation(n.life); err != nil {
					n.log.Warn("cluster: could not set the cluster's incarnation", "err", err)
					continue
				}
				n.log.Info("cluster: a new cluster's incarnation is set")
			}
		}
	}
}

// Replicate is store.Options.Replicate for a node of a cluster: the
// leader proposes the entry and answers from its own apply of it; a
// follower forwards it to the leader and answers from its own apply of
// the index the leader committed it at.
func (n *Node) Replicate(ctx context.Context, _ *store.Store, entry []byte) (*store.Applied, error) {
	if n.raft == nil {
		return nil, unavailable("starting", "this server is starting; retry shortly")
	}
	if err := n.stopped(); err != nil {
		return nil, unavailable("stopped", "this server stopped; use another")
	}
	if n.raft.State() == raft.Leader {
		_, a, err := n.apply(entry)
		if !errors.Is(err, errNotLeader) {
			return a, err
		}
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return nil, noQuorum()
	}
	// The store's writer waits here with its whole life as context: bound
	// the wait, or a follower cut off from the leader after the leader
	// took its entry (it never applies it while cut off) would hold every
	// later write of the node, unanswered.
	bounded, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	w := n.fsm.expect(entry)
	index, err := forwardTo(bounded, string(addr), n.cfg.Secret, entry, n.cfg.ApplyTimeout)
	if err != nil {
		n.counts.forwardFailed.Add(1)
		n.fsm.forget(w)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n.log.Warn("cluster: forwarding a write to the leader failed", "leader", string(addr), "err", err)
		return nil, noQuorum()
	}
	n.counts.forwarded.Add(1)
	a, err := n.fsm.await(bounded, w, index)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil {
		// Committed, but not applied here in time: this node does not
		// hear from the leader. Not no_quorum, which says nothing was
		// saved: the write was, and a retry finds it (ops by their ids).
		n.log.Warn("cluster: a forwarded write was committed but not applied here in time", "index", index)
		return nil, unavailable("not_applied", "your write was saved by the cluster but this server has not caught up with it; retry it, here or on another server")
	}
	return a, err
}

// propose is the leader's side of a forwarded entry.
func (n *Node) propose(entry []byte) (uint64, error) {
	index, _, err := n.apply(entry)
	return index, err
}

// apply proposes entry to raft on the leader and returns its index and
// this node's apply of it.
func (n *Node) apply(entry []byte) (uint64, *store.Applied, error) {
	if n.restoring.Load() {
		// The restore replaces the state these writes were made on.
		return 0, nil, unavailable("restoring", "this cluster is being restored from a backup; retry shortly")
	}
	f := n.raft.Apply(entry, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, nil, errNotLeader
		}
		// Lost leadership or a timeout: the entry may yet commit. Every
		// write is safe to retry (ops by their ids, sign-ins as new
		// sessions), so the client is told to.
		n.log.Warn("cluster: a write was not committed", "err", err)
		return 0, nil, noQuorum()
	}
	switch r := f.Response().(type) {
	case *store.Applied:
		return f.Index(), r, nil
	case error:
		return 0, nil, r
	}
	return 0, nil, fmt.Errorf("cluster: entry %d: an unexpected answer %T", f.Index(), f.Response())
}

// fail stops the node after an entry failed to apply.
func (n *Node) fail(err error) {
	n.failMu.Lock()
	first := n.failed == nil
	if first {
		n.failed = err
	}
	n.failMu.Unlock()
	if first && n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
}

func (n *Node) stopped() error {
	n.failMu.Lock()
	defer n.failMu.Unlock()
	return n.failed
}

// AddVoter adds a node to the cluster; on the leader only.
func (n *Node) AddVoter(p Peer) error {
	return n.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.Addr), 0, n.cfg.ApplyTimeout).Error()
}

// RemoveServer takes a node out of the cluster; on the leader only.
func (n *Node) RemoveServer(id string) error {
	return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error()
}

// TakeSnapshot has raft snapshot the store now and cut its log.
func (n *Node) TakeSnapshot() error { return n.raft.Snapshot().Error() }

// Close stops raft and the cluster port. The store is the caller's.
func (n *Node) Close() error {
	n.end()
	var err error
	if n.raft != nil {
		err = n.raft.Shutdown().Error()
	}
	n.wg.Wait()
	if n.trans != nil {
		if cerr := n.trans.Close(); err == nil {
			err = cerr
		}
	} else {
		n.layer.Close()
	}
	n.layer.wait()
	if n.logs != nil {
		if cerr := n.logs.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// unavailable is a 503 in the protocol's format whose details say why
// and when to come back.
func unavailable(reason, message string) *syncproto.Error {
	return (&syncproto.Error{Code: syncproto.CodeUnavailable, Message: message}).With("reason", reason).With("retry_after", 1)
}

// noQuorum is the answer to a write on a node that cannot reach a
// majority of its cluster.
func noQuorum() *syncproto.Error {
	return unavailable(ReasonNoQuorum, "this server cannot reach a majority of its cluster, so it cannot save changes now; it still serves what it has; retry shortly or use another server")
}

// ReasonNoQuorum is the details' reason of a write refused for want of a
// majority (PROTOCOL.md section 2).
const ReasonNoQuorum = "no_quorum"
