//go:build unix

package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/netshape"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// numNodes is the cluster's size: three, the smallest that survives the
// loss of one node.
const numNodes = 3

// The nodes' raft snapshot settings: a snapshot every 64 entries, checked
// every second or two, with 128 entries kept after it, so a node that
// comes back empty needs a snapshot. The entries kept must outlast what
// the others commit while a snapshot crosses to a node and installs
// (seconds on two busy cores): with 16, a wiped node installed a
// snapshot only to find the entries after it compacted, and asked for
// the next, for ever. (With 512, one run saw a wiped node rejoin without
// a snapshot, which the test requires.)
const (
	snapshotInterval  = "1s"
	snapshotThreshold = "64"
	trailingLogs      = "128"
)

// startTimeout bounds the wait for a child to listen: a hung node fails
// the test (servertest.ChildExitTimeout bounds the wait for its end).
const startTimeout = 60 * time.Second

// testCluster is three fieldsyncd child processes on loopback.
//
// Raft keeps one address per member, the same for every node. To give
// each direction of each pair its own proxy, every founding node is
// bootstrapped with its own view of the others' addresses (--peers):
// node i reaches node j at links[i][j], a netshape proxy to j's cluster
// port. Raft bootstraps each node's configuration as the first entry of
// its log, identical in index and term on every node, so no node ever
// replaces another's view, as long as no membership change is made. A
// node that rejoins empty takes its view from the leader's snapshot (the
// leader's own address direct, the other through the leader's proxy): the
// test wipes a node only after its partition. Forwarded writes go to the
// leader's own address, not through the proxies.
type testCluster struct {
	t          *testing.T
	bin        string
	secretFile string
	// logDir holds the nodes' stderr (raft's log too) and, when the
	// history is not linearizable, porcupine's picture of it: kept with
	// go test -artifacts.
	logDir string
	nodes  [numNodes]*node
	links  [numNodes][numNodes]*netshape.Proxy

	// mu guards each node's child and url, which change as nodes are
	// killed and restarted while the phones read them.
	mu sync.Mutex
}

// node is one member: its data directory, cluster port and HTTP address
// stay (the phones are given the three addresses); its process changes
// with each start.
type node struct {
	i        int
	id       string
	dir      string
	raftAddr string
	httpAddr string
	starts   int
	child    *servertest.Child // nil while it is down
	url      string            // "" while it is down
}

// startCluster starts three nodes that found a cluster, and waits until
// each serves.
func startCluster(t *testing.T, bin string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: bin, logDir: t.ArtifactDir()}
	c.secretFile = filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(c.secretFile, []byte("the cluster secret of the child-process test, 32+ bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		c.nodes[i] = &node{i: i, id: fmt.Sprintf("node%d", i+1), dir: t.TempDir(), raftAddr: servertest.FreeAddr(t), httpAddr: servertest.FreeAddr(t)}
	}
	for i := range c.nodes {
		for j := range c.nodes {
			if i == j {
				continue
			}
			p, err := netshape.Listen(c.nodes[j].raftAddr, netshape.Link{}, int64(10*i+j))
			if err != nil {
				t.Fatal(err)
			}
			c.links[i][j] = p
			t.Cleanup(func() { p.Close() })
		}
	}
	// The founders wait for each other before they serve: start all,
	// then wait for each.
	children := make([]*servertest.Child, numNodes)
	for i, n := range c.nodes {
		children[i] = c.launch(n, c.view(i))
	}
	for i, n := range c.nodes {
		c.serving(n, children[i])
	}
	return c
}

// view is node i's --peers: itself at its own port, the others through
// its proxies.
func (c *testCluster) view(i int) string {
	var peers []string
	for j, n := range c.nodes {
		addr := n.raftAddr
		if j != i {
			addr = c.links[i][j].Addr()
		}
		peers = append(peers, n.id+"="+addr)
	}
	return strings.Join(peers, ",")
}

// launch starts n's process; peers is empty for a node that restarts or
// rejoins.
func (c *testCluster) launch(n *node, peers string) *servertest.Child {
	c.t.Helper()
	// No request limit per device: the phones sync without pause, tens
	// of times a second, far above a phone's 10 requests a second, and
	// retry a refused sync at once; with the limit on, a phone that has
	// spent its burst is refused every request and the writes stop.
	args := []string{"serve", "--data", n.dir, "--addr", n.httpAddr, "--log-level", "error", "--device-rate", "-1",
		"--node-id", n.id, "--raft-addr", n.raftAddr, "--cluster-secret-file", c.secretFile,
		"--raft-snapshot-interval", snapshotInterval, "--raft-snapshot-threshold", snapshotThreshold, "--raft-trailing-logs", trailingLogs}
	if peers != "" {
		args = append(args, "--peers", peers)
	}
	ch := servertest.StartChild(c.t, c.bin, args, filepath.Join(c.logDir, fmt.Sprintf("%s-%02d.stderr", n.id, n.starts)))
	n.starts++
	return ch
}

// serving waits for n's address: a node prints it once it has caught up
// with the cluster.
func (c *testCluster) serving(n *node, ch *servertest.Child) {
	c.t.Helper()
	url, err := ch.WaitURL(startTimeout)
	if err == nil && url != "http://"+n.httpAddr {
		err = fmt.Errorf("it listens on %s, not on its --addr %s", url, n.httpAddr)
	}
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", n.id, err, ch.StderrTail())
	}
	c.mu.Lock()
	n.child, n.url = ch, url
	c.mu.Unlock()
}

// restart starts n again on its directory and waits until it serves.
func (c *testCluster) restart(n *node) {
	c.t.Helper()
	c.serving(n, c.launch(n, ""))
}

// kill SIGKILLs n and waits for the process to end.
func (c *testCluster) kill(n *node) {
	c.t.Helper()
	c.mu.Lock()
	ch := n.child
	n.child, n.url = nil, ""
	c.mu.Unlock()
	if err := ch.Kill(); err != nil {
		c.t.Fatalf("%s: %v\n%s", n.id, err, ch.StderrTail())
	}
}

// urls are the nodes' HTTP addresses, from node i on, as a phone is
// given them.
func (c *testCluster) urls(i int) []string {
	var out []string
	for k := range numNodes {
		out = append(out, "http://"+c.nodes[(i+k)%numNodes].httpAddr)
	}
	return out
}

// urlOf is n's HTTP address, "" while it is down.
func (c *testCluster) urlOf(n *node) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.url
}

// cut drops all raft traffic between n and the others, both ways: open
// connections stall, new ones are accepted and stall.
func (c *testCluster) cut(n *node) { c.setLinks(n, netshape.Link{BlackHole: true}) }

// heal lets n's raft traffic through again.
func (c *testCluster) heal(n *node) { c.setLinks(n, netshape.Link{}) }

func (c *testCluster) setLinks(n *node, l netshape.Link) {
	c.t.Helper()
	for j := range c.nodes {
		if j == n.i {
			continue
		}
		for _, p := range []*netshape.Proxy{c.links[n.i][j], c.links[j][n.i]} {
			if err := p.SetLink(l); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// health is n's view of the cluster from its readyz (200 or 503); false
// when n is down or does not answer.
func (c *testCluster) health(n *node) (syncproto.ClusterHealth, bool) {
	url := c.urlOf(n)
	if url == "" {
		return syncproto.ClusterHealth{}, false
	}
	return servertest.ClusterHealth(context.Background(), url)
}

// leader waits until a running node leads with a quorum, and returns it.
func (c *testCluster) leader() *node {
	c.t.Helper()
	var l *node
	testwait.Until(c.t, "a leader", func() bool {
		for _, n := range c.nodes {
			if h, ok := c.health(n); ok && h.Role == "leader" && h.Quorum {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// follower is a running node other than the leader l.
func (c *testCluster) follower(l *node) *node {
	for _, n := range c.nodes {
		if n != l && c.urlOf(n) != "" {
			return n
		}
	}
	c.t.Fatal("no running follower")
	return nil
}

// caughtUp waits until every node runs with a quorum and has applied
// everything committed, the same index on all.
func (c *testCluster) caughtUp(what string) uint64 {
	c.t.Helper()
	var index uint64
	testwait.Until(c.t, what, func() bool {
		index = 0
		for _, n := range c.nodes {
			h, ok := c.health(n)
			if !ok || !h.Quorum || h.Lag != 0 || (index != 0 && h.AppliedIndex != index) {
				return false
			}
			index = h.AppliedIndex
		}
		return true
	})
	return index
}

// freeze stops the cluster at one state: once every node has applied the
// same entries it cuts every link, so nothing more can commit (a node's
// own background write, the flush of its pull sightings, cannot reach a
// majority), and SIGKILLs the three. When a write committed on two nodes
// slipped in before the cut and one did not learn of it, it heals and
// tries again.
func (c *testCluster) freeze() {
	c.t.Helper()
	testwait.Until(c.t, "the three nodes frozen at the same applied index", func() bool {
		c.caughtUp("the nodes caught up before the freeze")
		for _, n := range c.nodes {
			c.cut(n)
		}
		var index uint64
		for i, n := range c.nodes {
			h, ok := c.health(n)
			if !ok || (i > 0 && h.AppliedIndex != index) {
				for _, n := range c.nodes {
					c.heal(n)
				}
				return false
			}
			index = h.AppliedIndex
		}
		return true
	})
	for _, n := range c.nodes {
		c.kill(n)
	}
}

// stderrTails is the end of every running node's stderr, for a failure.
func (c *testCluster) stderrTails() string {
	var b strings.Builder
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.child != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", n.id, filepath.Base(n.child.StderrPath()), n.child.StderrTail())
		}
	}
	return b.String()
}
