package cluster

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Stats is a node's status and its counters since it started, for
// fieldsyncd's metrics (docs/METRICS.md).
type Stats struct {
	Status
	// LastLogIndex is the newest entry in this node's raft log, committed
	// or not.
	LastLogIndex uint64
	// LeaderChanges counts the changes of leader this node saw, to none
	// included (an election begins) and its own.
	LeaderChanges uint64
	// Forwarded counts the writes this node forwarded to the leader that
	// were committed, ForwardFailed those refused or lost on the way
	// (the client was told no_quorum and retries).
	Forwarded, ForwardFailed uint64
	// Snapshots counts the snapshots this node made; SnapshotSeconds is
	// their total time (copy and persist), LastSnapshotSeconds and
	// LastSnapshotBytes the newest one's.
	Snapshots           uint64
	SnapshotSeconds     float64
	LastSnapshotSeconds float64
	LastSnapshotBytes   int64
	// Restores counts the snapshots this node installed (it was behind the
	// leader's cut log, or empty); LastRestoreSeconds the newest one's
	// time.
	Restores           uint64
	LastRestoreSeconds float64
	// PhotosMissing is how many photos this node's metadata names whose
	// file it lacks and could not fetch yet, as its last repair found;
	// PhotosFetched counts the photos it fetched from other nodes;
	// PhotoNoQuorum the uploads it refused because no majority took the
	// photo's file.
	PhotosMissing int64
	PhotosFetched uint64
	PhotoNoQuorum uint64
}

// counters are a node's Stats counters, updated as things happen.
type counters struct {
	leaderChanges, forwarded, forwardFailed atomic.Uint64
	snapshots, restores                     atomic.Uint64
	photosFetched, photoNoQuorum            atomic.Uint64
	photosMissing                           atomic.Int64
	// nanoseconds and bytes
	snapshotTotal, lastSnapshot, lastSnapshotBytes, lastRestore atomic.Int64
}

// snapshotMade records a snapshot that took took and wrote size bytes.
func (c *counters) snapshotMade(took time.Duration, size int64) {
	c.snapshots.Add(1)
	c.snapshotTotal.Add(int64(took))
	c.lastSnapshot.Store(int64(took))
	c.lastSnapshotBytes.Store(size)
}

func (c *counters) restored(took time.Duration) {
	c.restores.Add(1)
	c.lastRestore.Store(int64(took))
}

// observeLeaders counts the changes of leader raft reports: the
// observer's filter counts them and lets none through, so nothing needs
// to read a channel.
func (n *Node) observeLeaders() *raft.Observer {
	return raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if _, ok := o.Data.(raft.LeaderObservation); ok {
			n.counts.leaderChanges.Add(1)
		}
		return false
	})
}

// Stats reads the node's status and counters now.
func (n *Node) Stats() Stats {
	s := Stats{Status: n.Status()}
	if n.raft != nil {
		s.LastLogIndex = n.raft.LastIndex()
	}
	c := &n.counts
	s.LeaderChanges = c.leaderChanges.Load()
	s.Forwarded, s.ForwardFailed = c.forwarded.Load(), c.forwardFailed.Load()
	s.Snapshots, s.Restores = c.snapshots.Load(), c.restores.Load()
	s.SnapshotSeconds = time.Duration(c.snapshotTotal.Load()).Seconds()
	s.LastSnapshotSeconds = time.Duration(c.lastSnapshot.Load()).Seconds()
	s.LastSnapshotBytes = c.lastSnapshotBytes.Load()
	s.LastRestoreSeconds = time.Duration(c.lastRestore.Load()).Seconds()
	s.PhotosMissing = c.photosMissing.Load()
	s.PhotosFetched, s.PhotoNoQuorum = c.photosFetched.Load(), c.photoNoQuorum.Load()
	return s
}
