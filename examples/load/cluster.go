package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/localserver"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
)

// clusterSize is the cluster of -cluster: three nodes, the smallest that
// survives the loss of one.
const clusterSize = 3

// benchSecret is the cluster secret of the in-process nodes.
var benchSecret = []byte("the cluster secret of the load program, 32+ bytes")

// clusterCursorWait is fieldsyncd's: how long a pull on a node waits for
// a cursor another node gave.
const clusterCursorWait = 2 * time.Second

// localCluster is three nodes in this process on loopback, as
// server/cluster's tests build them: each its own raft (log and stable
// store in raft.db, fsynced), its own store, and its own real HTTP
// server. Raft's timings and log bounds are fieldsyncd's defaults.
type localCluster struct {
	nodes  []*cluster.Node
	stores []*store.Store
	srvs   []*localserver.Server // each closes its node's store
	dirs   []string
}

// startLocalCluster starts the three nodes, waits for the cluster's
// incarnation on each, then serves HTTP on the leader first (which makes
// the admin through the log) and on the others once they have it.
// fsmNoSync turns off the fsync of the stores' bbolt commits (raft's log
// keeps its own).
func startLocalCluster(ctx context.Context, cfg *config, fsmNoSync bool, timings *serverTimings) (c *localCluster, err error) {
	c = &localCluster{}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.close())
			c = nil
		}
	}()
	var peers []cluster.Peer
	for i := range clusterSize {
		dir, err := os.MkdirTemp("", "load-node-*")
		if err != nil {
			return c, err
		}
		c.dirs = append(c.dirs, dir)
		n, err := cluster.New(cluster.Config{NodeID: fmt.Sprintf("node%d", i+1), RaftAddr: "127.0.0.1:0", Secret: benchSecret, Dir: dir})
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, n)
		peers = append(peers, cluster.Peer{ID: n.ID(), Addr: n.Addr()})
	}
	c.stores = make([]*store.Store, clusterSize)
	c.srvs = make([]*localserver.Server, clusterSize)
	stores := c.stores
	for i, n := range c.nodes {
		st, err := store.Open(c.dirs[i], store.Options{Create: true, NoSync: fsmNoSync, MaxDevicesPerUser: -1,
			Replicate: n.Replicate, CursorWait: clusterCursorWait})
		if err != nil {
			return c, err
		}
		stores[i] = st
		if err := n.Start(st, peers); err != nil {
			return c, err
		}
	}
	leader := -1
	if err := c.waitFor(ctx, "a leader and the cluster's incarnation on every node", func() bool {
		leader = -1
		for i, n := range c.nodes {
			if n.Leads() {
				leader = i
			}
		}
		return leader >= 0 && c.converged(stores)
	}); err != nil {
		return c, err
	}
	order := []int{leader}
	for i := range c.nodes {
		if i != leader {
			order = append(order, i)
		}
	}
	for _, i := range order {
		srv, err := startServer(cfg, servertest.Options{Store: stores[i]}, timings)
		if err != nil {
			stores[i] = nil // a server that fails to start closes its store
			return c, err
		}
		c.srvs[i] = srv
		if err := c.waitFor(ctx, "the admin on every node", func() bool { return c.converged(stores) }); err != nil {
			return c, err
		}
	}
	// The leader first: the phones' setup runs there.
	c.srvs[0], c.srvs[leader] = c.srvs[leader], c.srvs[0]
	c.nodes[0], c.nodes[leader] = c.nodes[leader], c.nodes[0]
	c.stores[0], c.stores[leader] = c.stores[leader], c.stores[0]
	return c, nil
}

// converged reports whether every store applied the same entries.
func (c *localCluster) converged(stores []*store.Store) bool {
	want := stores[0].AppliedIndex()
	for _, st := range stores[1:] {
		if st.AppliedIndex() != want {
			return false
		}
	}
	return want > 0
}

// waitFor polls cond for at most a minute.
func (c *localCluster) waitFor(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// urls are the nodes' HTTP addresses, the leader's first.
func (c *localCluster) urls() []string {
	var out []string
	for _, s := range c.srvs {
		out = append(out, s.URL)
	}
	return out
}

// close stops every node's raft before the servers close their stores.
func (c *localCluster) close() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Close())
	}
	for i, s := range c.srvs {
		switch {
		case s != nil:
			errs = append(errs, s.Close())
		case c.stores[i] != nil:
			errs = append(errs, c.stores[i].Close())
		}
	}
	for _, d := range c.dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// setupCluster starts a local cluster and loads the demo city and the
// phones through its leader; the load phase then spreads the phones over
// the three nodes, as a load balancer in front of them would.
func setupCluster(ctx context.Context, cfg *config, fsmNoSync bool, stderr io.Writer) (*env, *localCluster, error) {
	timings := &serverTimings{errors: stderr}
	c, err := startLocalCluster(ctx, cfg, fsmNoSync, timings)
	if err != nil {
		return nil, nil, err
	}
	e, err := setupOn(ctx, cfg, c.srvs[0], c.close, timings, stderr)
	if err != nil {
		return nil, nil, err
	}
	urls := c.urls()
	for i, d := range e.devices {
		d.c.BaseURL = urls[i%len(urls)]
	}
	return e, c, nil
}
