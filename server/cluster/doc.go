// Package cluster runs one city's store as a replicated state machine on
// hashicorp/raft (docs/CLUSTER.md): the store's groups of writes are raft
// entries (node.go), applied on every node by the same code (fsm.go);
// snapshots stream the store as its backup does; a follower forwards its
// writes to the leader (forward.go); nodes talk over one port that only
// holders of the cluster secret reach (stream.go), which also carries the
// operator's commands (control.go), among them the restore of a backup
// into a new cluster through raft's user snapshot (restore.go).
package cluster
