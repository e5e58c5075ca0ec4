package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/server/cluster"
)

// ClusterNode is what WatchCluster reads of a node at each scrape;
// *cluster.Node has it.
type ClusterNode interface {
	Stats() cluster.Stats
}

var _ ClusterNode = (*cluster.Node)(nil)

// raftStates are the values of fieldsync_raft_state's state label, all
// present (one at 1), so a query need not know which exist.
var raftStates = []string{cluster.StateLeader, cluster.StateFollower, cluster.StateCandidate, cluster.StateStopped}

// WatchCluster adds the raft metrics of a node of a cluster, read from it
// at each scrape (docs/METRICS.md). One server has none of them.
func (m *Metrics) WatchCluster(n ClusterNode) {
	if m == nil {
		return
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("fieldsync_raft_"+name, help, labels, nil)
	}
	m.reg.MustRegister(&clusterCollector{n: n,
		state:         d("state", "1 for this node's raft state now (leader, follower, candidate, stopped), 0 for the others.", "state"),
		quorum:        d("quorum", "1 while this node leads or follows a leader it heard from lately, so takes writes; 0 when it refuses them (no_quorum)."),
		term:          d("term", "The raft term this node is in."),
		lastLog:       d("last_log_index", "Newest entry in this node's raft log, committed or not."),
		commit:        d("commit_index", "Newest entry this node knows committed on a majority."),
		applied:       d("applied_index", "Newest entry this node's store applied."),
		lag:           d("lag", "Entries this node knows committed and has not applied yet."),
		leaderChanges: d("leader_changes_total", "Changes of leader this node saw since it started, to none (an election) included."),
		forwarded:     d("forwarded_writes_total", "Writes this node forwarded to the leader: committed (ok) or refused or lost on the way (failed; the client was told no_quorum).", "result"),
		snapshots:     d("snapshots_total", "Snapshots of the store this node made since it started."),
		snapSeconds:   d("snapshot_seconds_total", "Time spent making those snapshots (copy and write), in seconds."),
		lastSnapSecs:  d("last_snapshot_seconds", "Time the newest snapshot took, in seconds."),
		lastSnapBytes: d("last_snapshot_bytes", "Size of the newest snapshot in bytes (the store and its photos, as a backup stream)."),
		restores:      d("snapshot_restores_total", "Snapshots this node installed since it started (it joined empty or fell behind the leader's log)."),
		lastRestore:   d("last_restore_seconds", "Time the newest installed snapshot took, in seconds."),
		photosMissing: prometheus.NewDesc("fieldsync_photos_missing",
			"Photos this node's store names whose file it lacks and has not fetched from another node yet, as its last repair found.", nil, nil),
		photosFetched: prometheus.NewDesc("fieldsync_photos_fetched_total",
			"Photos' files this node fetched from other nodes of its cluster since it started.", nil, nil),
		photoNoQuorum: prometheus.NewDesc("fieldsync_photo_uploads_no_quorum_total",
			"Photo uploads this node refused (503 no_quorum) because no majority of the nodes took the file.", nil, nil),
	})
}

type clusterCollector struct {
	n                                                  ClusterNode
	state, quorum, term, lastLog, commit, applied, lag *prometheus.Desc
	leaderChanges, forwarded, snapshots, snapSeconds   *prometheus.Desc
	lastSnapSecs, lastSnapBytes, restores, lastRestore *prometheus.Desc
	photosMissing, photosFetched, photoNoQuorum        *prometheus.Desc
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.quorum, c.term, c.lastLog, c.commit, c.applied, c.lag,
		c.leaderChanges, c.forwarded, c.snapshots, c.snapSeconds, c.lastSnapSecs, c.lastSnapBytes, c.restores, c.lastRestore,
		c.photosMissing, c.photosFetched, c.photoNoQuorum} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, st := range raftStates {
		gauge(c.state, b2f(s.State == st), st)
	}
	gauge(c.quorum, b2f(s.Quorum))
	gauge(c.term, float64(s.Term))
	gauge(c.lastLog, float64(s.LastLogIndex))
	gauge(c.commit, float64(s.CommitIndex))
	gauge(c.applied, float64(s.AppliedIndex))
	gauge(c.lag, float64(s.Lag))
	counter(c.leaderChanges, float64(s.LeaderChanges))
	counter(c.forwarded, float64(s.Forwarded), "ok")
	counter(c.forwarded, float64(s.ForwardFailed), "failed")
	counter(c.snapshots, float64(s.Snapshots))
	counter(c.snapSeconds, s.SnapshotSeconds)
	gauge(c.lastSnapSecs, s.LastSnapshotSeconds)
	gauge(c.lastSnapBytes, float64(s.LastSnapshotBytes))
	counter(c.restores, float64(s.Restores))
	gauge(c.lastRestore, s.LastRestoreSeconds)
	gauge(c.photosMissing, float64(s.PhotosMissing))
	counter(c.photosFetched, float64(s.PhotosFetched))
	counter(c.photoNoQuorum, float64(s.PhotoNoQuorum))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
