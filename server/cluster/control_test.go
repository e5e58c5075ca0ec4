package cluster_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/cluster"
)

// servers are the ids of the members of the configuration a status
// reports, sorted.
func servers(s cluster.Status) []string {
	var ids []string
	for _, p := range s.Servers {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestCluster_Control: the operator's commands over the cluster port. A
// follower answers status with the cluster's members; a fourth node is
// added through a follower's address (the command goes on to the leader)
// and catches up; then it is removed the same way; a dialer without the
// secret gets nothing.
func TestCluster_Control(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 3)
	lead := c.leader()
	var follower *member
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}
	resp, err := cluster.Control(ctx, follower.addr, testSecret, cluster.ControlRequest{Op: cluster.OpStatus})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.State != cluster.StateFollower || resp.Status.LeaderID != lead.id || !resp.Status.Quorum {
		t.Fatalf("a follower's status: %+v", resp.Status)
	}
	if got := servers(resp.Status); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
		t.Fatalf("the members a follower reports: %v", got)
	}

	// The leader cuts its log at a snapshot: the new node below catches
	// up from it.
	if err := lead.node.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	if s := lead.node.Stats(); s.Snapshots != 1 || s.LastSnapshotBytes == 0 || s.LeaderChanges == 0 {
		t.Fatalf("the leader's counters after a snapshot: %+v", s)
	}

	// A new node with an empty directory waits to be added.
	m := &member{id: "node4", dir: t.TempDir(), addr: "127.0.0.1:0"}
	node, err := cluster.New(nodeConfig(m))
	if err != nil {
		t.Fatal(err)
	}
	m.node, m.addr = node, node.Addr()
	c.members = append(c.members, m)
	c.openStore(m)
	st := m.st
	t.Cleanup(func() { st.Close() }) // after the node's
	if err := node.Start(m.st, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if _, err := cluster.Control(ctx, follower.addr, testSecret, cluster.ControlRequest{Op: cluster.OpAdd, Peer: cluster.Peer{ID: m.id, Addr: m.addr}}); err != nil {
		t.Fatalf("add through a follower: %v", err)
	}
	if err := node.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitConverged("the added node to catch up")
	if s := node.Stats(); s.Restores != 1 {
		t.Fatalf("the added node installed %d snapshots, want 1", s.Restores)
	}
	if got := servers(node.Status()); len(got) != 4 {
		t.Fatalf("the members after the add: %v", got)
	}

	if _, err := cluster.Control(ctx, follower.addr, testSecret, cluster.ControlRequest{Op: cluster.OpRemove, Peer: cluster.Peer{ID: m.id}}); err != nil {
		t.Fatalf("remove through a follower: %v", err)
	}
	testwait.Until(t, "the removal in the leader's configuration", func() bool {
		return slices.Equal(servers(lead.node.Status()), []string{"node1", "node2", "node3"})
	})

	if _, err := cluster.Control(ctx, follower.addr, []byte("not the cluster's secret, but 32+ bytes"), cluster.ControlRequest{Op: cluster.OpStatus}); err == nil {
		t.Fatal("a dialer without the secret got a status")
	}
}
