package cluster_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/servertest"
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
	m := c.join("node4", follower)
	node := m.node
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

// join starts a node with an empty directory and no peers, as an
// operator starts a new machine, and has it added to the cluster through
// via's cluster port (the command goes on to the leader). It does not
// wait for the node to catch up.
func (c *testCluster) join(id string, via *member) *member {
	c.t.Helper()
	m := &member{id: id, dir: c.t.TempDir(), addr: "127.0.0.1:0", askedCatchUp: make(chan struct{}, 1)}
	node, err := cluster.New(nodeConfig(m))
	if err != nil {
		c.t.Fatal(err)
	}
	m.node, m.addr = node, node.Addr()
	c.members = append(c.members, m)
	c.openStore(m)
	st := m.st
	c.t.Cleanup(func() { st.Close() }) // after the node's
	if err := node.Start(m.st, nil); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { node.Close() })
	if _, err := cluster.Control(context.Background(), via.addr, testSecret, cluster.ControlRequest{Op: cluster.OpAdd, Peer: cluster.Peer{ID: m.id, Addr: m.addr}}); err != nil {
		c.t.Fatalf("add %s through %s: %v", id, via.id, err)
	}
	return m
}

// TestCluster_WaitCaughtUp: a node added to a cluster whose log holds
// more entries than raft sends in one message (64) returns from
// WaitCaughtUp only once its store has applied every write the cluster
// acknowledged before: a server started on it then knows every user and
// key. Applying what the node knew committed was not enough: it knew
// only the first message's entries, or had handed the rest to its state
// machine without applying them yet, and a server started on it answered
// the admin's sign-in with 401 (fieldsyncd's TestCluster_Commands, on a
// busy machine).
func TestCluster_WaitCaughtUp(t *testing.T) {
	c := startCluster(t, 1)
	lead := c.members[0]
	// One entry each: a sign-in is a write.
	for range 150 {
		lead.srv.Login(t, app.AdminUsername, servertest.AdminPassword)
	}
	acknowledged := lead.st.AppliedIndex()
	m := c.join("node2", lead)
	if err := m.node.WaitCaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.st.AppliedIndex(); got < acknowledged {
		t.Fatalf("the added node was caught up at index %d, before the %d its cluster had applied when it was added", got, acknowledged)
	}
	c.waitConverged("the added node's state")
}
