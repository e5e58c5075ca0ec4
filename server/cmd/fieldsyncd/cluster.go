package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/store"
)

// clusterCursorWait is how long a pull on a node of a cluster waits for
// the node to catch up with a cursor another node gave, before 503.
const clusterCursorWait = 2 * time.Second

// startNode opens this node's cluster port and points the store's options
// at it: every write goes through raft (docs/CLUSTER.md). A node of a
// cluster creates its store when it has none: it gets its state from the
// cluster, not from init.
func startNode(_ context.Context, cfg *serveConfig, sopts *store.Options, logger *slog.Logger, raftLog io.Writer) (*cluster.Node, error) {
	node, err := cluster.New(cluster.Config{NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, Secret: cfg.ClusterSecret, Dir: cfg.Data,
		Logger: logger, RaftLog: raftLog, SnapshotInterval: cfg.RaftSnapshotInterval,
		SnapshotThreshold: uint64(cfg.RaftSnapshotThreshold), TrailingLogs: uint64(cfg.RaftTrailingLogs)})
	if err != nil {
		return nil, err
	}
	sopts.Create = true
	node.Wire(sopts)
	sopts.CursorWait = clusterCursorWait
	return node, nil
}

// refuseNode refuses a command that would write the store in dir
// directly when dir is a node of a cluster (it holds raft's log): a
// cluster's stores come from its log, and one written outside it would
// differ from the others' for ever. instead says what to do.
func refuseNode(dir, instead string) error {
	if _, err := os.Stat(filepath.Join(dir, cluster.RaftFile)); err == nil {
		return fmt.Errorf("%s is the directory of a node of a cluster, whose store is written only through the raft log: %s", dir, instead)
	}
	return nil
}

// joinCluster runs raft on st (bootstrapping a new cluster of peers when
// this node has no raft state yet) and waits until the node has caught
// up, so the server starts on the cluster's state, not an empty one.
func joinCluster(ctx context.Context, node *cluster.Node, st *store.Store, peers []cluster.Peer, logger *slog.Logger) error {
	if err := node.Start(st, peers); err != nil {
		return err
	}
	logger.Info("cluster: waiting to reach the cluster and catch up", "node", node.ID(), "raft_addr", node.Addr())
	if err := node.WaitCaughtUp(ctx); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	s := node.Status()
	logger.Info("cluster: caught up", "node", node.ID(), "state", s.State, "leader", s.LeaderID, "applied_index", s.AppliedIndex)
	return nil
}
