package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testSecret is the cluster secret of the tests' clusters.
var testSecret = []byte("a cluster secret of the tests, 32+ bytes long")

// member is one node of a test cluster: its raft node, its store, and
// the real HTTP server on it.
type member struct {
	id, dir, addr string
	node          *cluster.Node
	st            *store.Store
	srv           *servertest.Server
	// catchUps counts the sign-ins that failed on m and asked its node to
	// catch up (app.Config.CatchUp); askedCatchUp hears of each, when
	// nothing else is waiting to be heard.
	catchUps     atomic.Int64
	askedCatchUp chan struct{}
}

// testCluster is n nodes on loopback, in this process.
type testCluster struct {
	t       *testing.T
	members []*member
}

// nodeConfig is a test node's: raft timings short enough for a test,
// long enough for a busy machine, and a raft log cut after a few entries
// past each snapshot, so a node that comes back empty needs one.
func nodeConfig(m *member) cluster.Config {
	return cluster.Config{NodeID: m.id, RaftAddr: m.addr, Secret: testSecret, Dir: m.dir,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond, LeaderLeaseTimeout: 250 * time.Millisecond,
		TrailingLogs: 4}
}

// startCluster starts n nodes that bootstrap one cluster, waits for its
// incarnation on every node, then serves HTTP on each.
func startCluster(t *testing.T, n int) *testCluster {
	c := &testCluster{t: t}
	var peers []cluster.Peer
	for i := range n {
		m := &member{id: fmt.Sprintf("node%d", i+1), dir: t.TempDir(), addr: "127.0.0.1:0", askedCatchUp: make(chan struct{}, 1)}
		node, err := cluster.New(nodeConfig(m))
		if err != nil {
			t.Fatal(err)
		}
		m.node, m.addr = node, node.Addr()
		peers = append(peers, cluster.Peer{ID: m.id, Addr: m.addr})
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		c.openStore(m)
		if err := m.node.Start(m.st, peers); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged("the new cluster's incarnation on every node")
	for _, m := range c.members {
		c.serve(m)
		// The first server makes the admin; the next ones find it.
		c.waitConverged("the admin on every node")
	}
	return c
}

func (c *testCluster) openStore(m *member) {
	opts := store.Options{Create: true, MaxDevicesPerUser: -1, CursorWait: 2 * time.Second}
	m.node.Wire(&opts)
	st, err := store.Open(m.dir, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	m.st = st
}

// serve starts the HTTP server on m's store; the node closes before the
// store, at the end of the test.
func (c *testCluster) serve(m *member) {
	node := m.node
	catchUp := func(ctx context.Context) error {
		m.catchUps.Add(1)
		select {
		case m.askedCatchUp <- struct{}{}:
		default:
		}
		return node.CatchUp(ctx)
	}
	m.srv = servertest.Start(c.t, servertest.Options{Store: m.st, AccessTTL: time.Hour, CatchUp: catchUp})
	c.t.Cleanup(func() { node.Close() })
}

// stop ends m's server, node and store, as a crash would, but cleanly.
func (c *testCluster) stop(m *member) {
	if err := m.node.Close(); err != nil {
		c.t.Logf("close %s: %v", m.id, err)
	}
	if err := m.srv.Close(); err != nil {
		c.t.Logf("close %s's server: %v", m.id, err)
	}
	m.srv, m.node, m.st = nil, nil, nil
}

// restart starts m again on its directory and address.
func (c *testCluster) restart(m *member) {
	node, err := cluster.New(nodeConfig(m))
	if err != nil {
		c.t.Fatal(err)
	}
	m.node = node
	c.openStore(m)
	if err := node.Start(m.st, nil); err != nil {
		c.t.Fatal(err)
	}
	if err := node.WaitCaughtUp(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.serve(m)
}

func (c *testCluster) running() []*member {
	var out []*member
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m)
		}
	}
	return out
}

// leader waits for one running node to lead, and returns it.
func (c *testCluster) leader() *member {
	c.t.Helper()
	var l *member
	testwait.Until(c.t, "a leader", func() bool {
		for _, m := range c.running() {
			if m.node.Status().State == cluster.StateLeader {
				l = m
				return true
			}
		}
		return false
	})
	return l
}

// waitConverged waits until every running node applied the same entries
// and holds the same state.
func (c *testCluster) waitConverged(what string) {
	c.t.Helper()
	testwait.Until(c.t, what, func() bool {
		ms := c.running()
		want := ms[0].st.AppliedIndex()
		if want == 0 {
			return false
		}
		for _, m := range ms[1:] {
			if m.st.AppliedIndex() != want {
				return false
			}
		}
		return true
	})
	c.checkSameState()
}

// checkSameState: the running nodes' stores hold the same buckets, keys,
// values and sequences, and the same incarnation.
func (c *testCluster) checkSameState() {
	c.t.Helper()
	ms := c.running()
	want, err := ms[0].st.Digest()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, m := range ms[1:] {
		got, err := m.st.Digest()
		if err != nil {
			c.t.Fatal(err)
		}
		if got != want {
			c.t.Fatalf("%s's state differs from %s's", m.id, ms[0].id)
		}
		if m.st.Incarnation() != ms[0].st.Incarnation() {
			c.t.Fatalf("%s's incarnation differs from %s's", m.id, ms[0].id)
		}
	}
}

// phone is a cadre's phone: the real SDK, on one node's address; moved
// to another with the same local state, as a phone behind a load
// balancer moves.
type phone struct {
	t     *testing.T
	dir   string
	sdk   *clientsdk.Client
	retry clientsdk.RetryPolicy
}

func newPhone(t *testing.T, url, username string) *phone {
	p := &phone{t: t, dir: t.TempDir()}
	p.open(url)
	if _, err := p.sdk.Login(context.Background(), username, servertest.CityPassword); err != nil {
		t.Fatalf("sign in %s: %v", username, err)
	}
	return p
}

func (p *phone) open(url string) {
	sdk, err := clientsdk.Open(p.dir, clientsdk.Options{ServerURL: url, Key: make([]byte, 32), DeviceName: "test", Platform: "test", Retry: p.retry})
	if err != nil {
		p.t.Fatal(err)
	}
	p.sdk = sdk
	p.t.Cleanup(func() { sdk.Close() })
}

func (p *phone) moveTo(url string) {
	p.sdk.Close()
	p.open(url)
}

// sync syncs until the phone has nothing left to send, and fails on a
// reset: a cursor means the same on every node.
func (p *phone) sync() {
	p.t.Helper()
	rep, err := p.sdk.Sync(context.Background())
	if err != nil {
		p.t.Fatalf("sync: %v", err)
	}
	if rep.Reset {
		p.t.Fatalf("the phone was reset")
	}
	if st := p.sdk.Status(); st.Pending > 0 {
		p.t.Fatalf("%d ops still pending after a sync", st.Pending)
	}
}

func (p *phone) visit(id, notes string) {
	p.t.Helper()
	if _, err := p.sdk.RecordAttempt(id, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Notes: notes}); err != nil {
		p.t.Fatal(err)
	}
}

// attempts is how many attempts the phone holds of warning id.
func (p *phone) attempts(id string) int {
	w, ok := p.sdk.Warning(id)
	if !ok {
		return -1
	}
	return len(w.Attempts)
}

// TestCluster_ThreeNodes: devices push through any node and pull from
// any node; the leader stops, another is elected and writes go on; the old
// leader comes back and catches up; a follower whose disk is wiped comes
// back from a snapshot; the three stores end identical; one node alone
// refuses writes with no_quorum and still serves pulls.
func TestCluster_ThreeNodes(t *testing.T) {
	c := startCluster(t, 3)
	first := c.members[0]
	first.srv.LoadCity(t)
	w := first.srv.Import(t, "center1",
		servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
		servertest.FeedRow("R2", servertest.UnitVillA1, syncproto.RiskMedium, time.Now().Add(-time.Hour)))

	// A phone on each node: each pushes through its node, and each sees
	// the other's push, whichever node it pulls from.
	a := newPhone(t, c.members[1].srv.URL, "a1")
	b := newPhone(t, c.members[2].srv.URL, "a1")
	a.sync()
	b.sync()
	a.visit(w["R1"], "第一次上门")
	a.sync()
	// A node answers a write once it applied it itself; the others
	// apply it a moment later.
	c.waitConverged("the push on every node")
	b.sync()
	if got := b.attempts(w["R1"]); got != 1 {
		t.Fatalf("the phone on %s holds %d attempts of R1 after the other's push through %s, want 1", c.members[2].id, got, c.members[1].id)
	}

	// The leader stops: another is elected, and writes go on through
	// any node left, phones moving to them with their cursors.
	old := c.leader()
	c.stop(old)
	next := c.leader()
	if next == old {
		t.Fatal("the stopped node is still the leader")
	}
	for _, p := range []*phone{a, b} {
		p.moveTo(c.running()[0].srv.URL)
	}
	b.visit(w["R2"], "电话未接")
	b.sync()
	c.waitConverged("the push after the failover")
	a.sync()
	if got := a.attempts(w["R2"]); got != 1 {
		t.Fatalf("after the failover the phone holds %d attempts of R2, want 1", got)
	}

	// The old leader comes back and catches up.
	c.restart(old)
	c.waitConverged("the old leader to catch up")
	a.moveTo(old.srv.URL)
	a.visit(w["R2"], "再次上门")
	a.sync()

	// A follower loses its disk and comes back empty under the same id:
	// the leader's log was cut at a snapshot, so it catches up from it.
	lead := c.leader()
	if err := lead.node.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	var wiped *member
	for _, m := range c.running() {
		if m != lead {
			wiped = m
			break
		}
	}
	c.stop(wiped)
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	b.moveTo(lead.srv.URL)
	b.visit(w["R1"], "回访")
	b.sync()
	c.restart(wiped)
	c.waitConverged("the wiped follower to catch up from a snapshot")
	if _, err := os.Stat(filepath.Join(wiped.dir, cluster.SnapshotDir)); err != nil {
		t.Fatal(err)
	}
	b.moveTo(wiped.srv.URL)
	b.sync()
	if got := b.attempts(w["R1"]); got != 2 {
		t.Fatalf("the phone on the rejoined node holds %d attempts of R1, want 2", got)
	}

	// Two nodes stop: the one left refuses writes with no_quorum, in the
	// protocol's format, and still serves pulls of what it has.
	lead = c.leader()
	var alone *member
	for _, m := range c.running() {
		if m != lead && alone == nil {
			alone = m
		}
	}
	for _, m := range c.running() {
		if m != alone {
			c.stop(m)
		}
	}
	// One try: the refusal itself is what is checked.
	a.retry = clientsdk.RetryPolicy{Attempts: 1}
	a.moveTo(alone.srv.URL)
	a.sync() // a pull: nothing pending
	a.visit(w["R1"], "少数派")
	_, err := a.sdk.Sync(context.Background())
	var perr *syncproto.Error
	if !errors.As(err, &perr) || perr.Code != syncproto.CodeUnavailable || perr.Details["reason"] != cluster.ReasonNoQuorum {
		t.Fatalf("a push to a node alone: %v, want unavailable with reason no_quorum", err)
	}
	if !strings.Contains(perr.Message, "majority") {
		t.Errorf("the refusal says %q", perr.Message)
	}
}

// TestCluster_KeyRotation: a signing key rotated through one node signs
// the tokens every node issues from then on, without a restart, and every
// node accepts the tokens the others issue.
func TestCluster_KeyRotation(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 3)
	c.members[0].srv.LoadCity(t)
	c.waitConverged("the city on every node")
	var rot struct {
		KID string `json:"kid"`
	}
	if err := c.members[1].srv.Admin(t).Do(ctx, "POST", "/v1/admin/keys/rotate", nil, &rot); err != nil || rot.KID == "" {
		t.Fatalf("rotate through %s: %v %+v", c.members[1].id, err, rot)
	}
	c.waitConverged("the rotation on every node")
	devices := make([]*servertest.Device, len(c.members))
	for i, m := range c.members {
		devices[i] = m.srv.Login(t, "leadA", servertest.CityPassword)
	}
	c.waitConverged("the sign-ins on every node")
	for i, m := range c.members {
		d := devices[i]
		header, _, _ := strings.Cut(d.Login.AccessToken, ".")
		raw, err := base64.RawURLEncoding.DecodeString(header)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			KID string `json:"kid"`
		}
		if err := json.Unmarshal(raw, &h); err != nil || h.KID != rot.KID {
			t.Errorf("%s signs with %q after the rotation through %s, want %q", m.id, h.KID, c.members[1].id, rot.KID)
		}
		for _, other := range c.members {
			var page syncproto.WarningList
			client := remote.New(other.srv.URL)
			client.SetToken(d.Login.AccessToken)
			if err := client.Do(ctx, "GET", "/v1/warnings", nil, &page); err != nil {
				t.Errorf("a token of %s at %s: %v", m.id, other.id, err)
			}
		}
	}
}
