package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/examples/internal/cityload"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The failover phase kills the leader of three fieldsyncd child
// processes: only a process can be SIGKILLed, and a kill is what a
// machine's death looks like to the others (no goodbye, connections
// reset, raft's log and the store as the disk holds them).
const (
	failoverPhones   = 6
	failoverPassword = "load-failover-admin-1"
	// failoverWait bounds each wait: a node's start, a new leader's
	// first acknowledged push, the nodes catching up after a restart.
	failoverWait = time.Minute
)

// failoverResult is the time from each SIGKILL of the leader to the next
// push a phone saw acknowledged.
type failoverResult struct {
	times                       []time.Duration
	loadAvgBefore, loadAvgAfter string
}

// procNode is one fieldsyncd child: its directory and ports stay across
// its restarts.
type procNode struct {
	id, dir, raftAddr, httpAddr string
	starts                      int
	cmd                         *exec.Cmd
	exited                      chan struct{}
}

// procCluster is three fieldsyncd processes on loopback, each given the
// others' cluster addresses.
type procCluster struct {
	bin, dir, secret string
	nodes            []*procNode
	stderr           io.Writer
}

// runFailover builds fieldsyncd (unless given one), starts three nodes,
// makes a small city through `fieldsyncd cluster init` and the admin API,
// lets phones given the three addresses push and pull in a loop, and
// kills the leader kills times, each time restarting it and waiting for
// the three to catch up before the next kill.
func runFailover(ctx context.Context, cfg *config, stderr io.Writer) (*failoverResult, error) {
	dir, err := os.MkdirTemp("", "load-failover-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := cfg.fieldsyncd
	if bin == "" {
		bin = filepath.Join(dir, "fieldsyncd")
		fmt.Fprintf(stderr, "failover: building fieldsyncd ...\n")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/fieldsync/fieldsync/server/cmd/fieldsyncd").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go build fieldsyncd: %w\n%s", err, out)
		}
	}
	c := &procCluster{bin: bin, dir: dir, secret: filepath.Join(dir, "cluster-secret"), stderr: stderr}
	defer c.killAll()
	if err := os.WriteFile(c.secret, benchSecret, 0o600); err != nil {
		return nil, err
	}
	var peers []string
	for i := range clusterSize {
		n := &procNode{id: fmt.Sprintf("node%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}
		if n.raftAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if n.httpAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		peers = append(peers, n.id+"="+n.raftAddr)
	}
	// The founders wait for each other before they serve: start all,
	// then wait for each.
	urls := make([]<-chan string, clusterSize)
	for i, n := range c.nodes {
		if urls[i], err = c.start(ctx, n, strings.Join(peers, ",")); err != nil {
			return nil, err
		}
	}
	for i, n := range c.nodes {
		if err := n.serving(urls[i]); err != nil {
			return nil, err
		}
	}
	phones, err := c.city(ctx)
	if err != nil {
		return nil, err
	}

	acks := &ackLog{}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Go(func() { p.loop(pctx, acks) })
	}
	defer func() { stop(); wg.Wait() }()

	res := &failoverResult{}
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 0))
	for k := range cfg.kills {
		if err := pauseFor(ctx, time.Duration(rng.IntN(500))*time.Millisecond); err != nil {
			return nil, err
		}
		l, err := c.leader(ctx)
		if err != nil {
			return nil, err
		}
		killed := time.Now()
		if err := l.kill(); err != nil {
			return nil, err
		}
		var d time.Duration
		if err := waitUntil(ctx, "an acknowledged push sent after the kill", func() bool {
			done, ok := acks.firstSentAfter(killed)
			d = done.Sub(killed)
			return ok
		}); err != nil {
			return nil, err
		}
		res.times = append(res.times, d)
		fmt.Fprintf(stderr, "failover: kill %d of %s, next acknowledged push after %v\n", k+1, l.id, d.Round(time.Millisecond))
		ch, err := c.start(ctx, l, "")
		if err != nil {
			return nil, err
		}
		if err := l.serving(ch); err != nil {
			return nil, err
		}
		if err := c.caughtUp(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// freeAddr is a free port on 127.0.0.1: a node keeps its ports across
// restarts, so they are chosen here.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts n (peers empty on a restart); the channel gets the
// address it prints once it has caught up and serves.
func (c *procCluster) start(ctx context.Context, n *procNode, peers string) (<-chan string, error) {
	args := []string{"serve", "--data", n.dir, "--addr", n.httpAddr, "--log-level", "error",
		"--node-id", n.id, "--raft-addr", n.raftAddr, "--cluster-secret-file", c.secret}
	if peers != "" {
		args = append(args, "--peers", peers)
	}
	errFile, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("%s-%02d.stderr", n.id, n.starts)))
	if err != nil {
		return nil, err
	}
	defer errFile.Close()
	n.starts++
	urls := make(chan string, 1)
	n.cmd = exec.CommandContext(ctx, c.bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = servertest.ListenWriter(urls), errFile
	n.cmd.WaitDelay = 5 * time.Second
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start fieldsyncd: %w", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(n.cmd)
	return urls, nil
}

// serving waits for n's "listening on" line.
func (n *procNode) serving(urls <-chan string) error {
	select {
	case <-urls:
		return nil
	case <-n.exited:
		return fmt.Errorf("%s exited before serving", n.id)
	case <-time.After(failoverWait):
		return fmt.Errorf("%s did not serve in %v", n.id, failoverWait)
	}
}

// kill SIGKILLs n and waits for the process to end.
func (n *procNode) kill() error {
	if n.cmd == nil {
		return nil
	}
	if err := n.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", n.id, err)
	}
	select {
	case <-n.exited:
		n.cmd = nil
		return nil
	case <-time.After(failoverWait):
		return fmt.Errorf("%s did not exit after SIGKILL", n.id)
	}
}

func (c *procCluster) killAll() {
	for _, n := range c.nodes {
		if err := n.kill(); err != nil {
			fmt.Fprintln(c.stderr, err)
		}
	}
}

func (n *procNode) url() string { return "http://" + n.httpAddr }

// health is n's readyz: its role, quorum, lag and applied index.
func (n *procNode) health(ctx context.Context) (syncproto.ClusterHealth, bool) {
	return servertest.ClusterHealth(ctx, n.url())
}

// leader waits for a running node that leads with a quorum.
func (c *procCluster) leader(ctx context.Context) (*procNode, error) {
	var l *procNode
	err := waitUntil(ctx, "a leader", func() bool {
		for _, n := range c.nodes {
			if h, ok := n.health(ctx); n.cmd != nil && ok && h.Role == "leader" && h.Quorum {
				l = n
				return true
			}
		}
		return false
	})
	return l, err
}

// caughtUp waits until every node has a quorum, nothing to apply, and
// the same applied index (a node answers from what it applied: the
// admin that init made through one node is on another a moment later).
func (c *procCluster) caughtUp(ctx context.Context) error {
	return waitUntil(ctx, "the three nodes caught up", func() bool {
		var index uint64
		for i, n := range c.nodes {
			h, ok := n.health(ctx)
			if !ok || !h.Quorum || h.Lag != 0 || (i > 0 && h.AppliedIndex != index) {
				return false
			}
			index = h.AppliedIndex
		}
		return true
	})
}

// city makes the first admin with `fieldsyncd cluster init` (through a
// follower, as an operator may), a township of failoverPhones villages
// with a cadre each, warnings for each, and signs the cadres in with the
// three addresses.
func (c *procCluster) city(ctx context.Context) ([]*failoverPhone, error) {
	pw := filepath.Join(c.dir, "admin-password")
	if err := os.WriteFile(pw, []byte(failoverPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	tree := servertest.Township(failoverPhones)
	out, err := exec.CommandContext(ctx, c.bin, "cluster", "init", "--node", c.nodes[1].raftAddr, "--cluster-secret-file", c.secret,
		"--admin-password-file", pw, "--root-unit", tree.Units[0].Code, tree.Units[0].Name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("fieldsyncd cluster init: %w\n%s", err, out)
	}
	if err := c.caughtUp(ctx); err != nil {
		return nil, err
	}
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url())
	}
	admin := remote.New(urls[0], urls[1:]...)
	if _, err := admin.Login(ctx, syncproto.LoginRequest{Username: app.AdminUsername, Password: failoverPassword,
		DeviceID: uuid.NewString(), DeviceName: "load failover admin", Platform: "load"}); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	if _, err := admin.UpsertUnits(ctx, tree.Units[1:]); err != nil {
		return nil, err
	}
	if _, err := cityload.UpsertUsers(ctx, admin, tree.Users); err != nil {
		return nil, err
	}
	var phones []*failoverPhone
	for i, u := range tree.Users {
		rows := demo.Warnings(tree, time.Now().Add(-24*time.Hour), 4, int64(i))
		for j := range rows {
			rows[j].Unit, rows[j].ExternalID = u.Unit, fmt.Sprintf("FAILOVER-%d-%d", i, j)
		}
		var ids []string
		err := whileUnavailable(ctx, func() (err error) {
			ids, err = cityload.ImportFeed(ctx, admin, rows)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := c.caughtUp(ctx); err != nil {
			return nil, err
		}
		// Each phone starts at its own node and moves on when it fails.
		own := append(append([]string{}, urls[i%len(urls):]...), urls[:i%len(urls)]...)
		d := &device{c: remote.New(own[0], own[1:]...), id: uuid.NewString(), username: u.Username, unit: u.Unit, warnings: ids}
		if _, err := d.c.Login(ctx, syncproto.LoginRequest{Username: u.Username, Password: u.Password, DeviceID: d.id,
			DeviceName: "load " + u.Username, Platform: "load"}); err != nil {
			return nil, fmt.Errorf("login %s: %w", u.Username, err)
		}
		phones = append(phones, &failoverPhone{device: d})
	}
	return phones, nil
}

// failoverPhone pushes one op at a time and pulls after each, as long as
// the phase runs, retrying a failed push (the same ops: the server
// applies each client_seq once) every 10 ms.
type failoverPhone struct {
	*device
}

func (p *failoverPhone) loop(ctx context.Context, acks *ackLog) {
	for ctx.Err() == nil {
		ops := p.recordOps(1)
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			sent := time.Now()
			resp, err := p.c.Push(rctx, syncproto.PushRequest{DeviceID: p.id, Ops: ops})
			cancel()
			if err == nil && len(resp.Results) == 1 && (resp.Results[0].Status == syncproto.StatusApplied || resp.Results[0].Status == syncproto.StatusDuplicate) {
				acks.add(sent, time.Now())
				break
			}
			_ = pauseFor(ctx, 10*time.Millisecond)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if resp, err := p.c.Pull(rctx, syncproto.PullRequest{DeviceID: p.id, Cursor: p.cursor}); err == nil {
			p.cursor = resp.Cursor
		}
		cancel()
	}
}

// ackLog keeps the acknowledged pushes of the phones: when each attempt
// that was answered was sent, and when its answer came. A push sent
// before a kill may be answered after it from an entry committed before
// it; only one sent after the kill shows that a new leader took writes.
type ackLog struct {
	mu   sync.Mutex
	acks [][2]time.Time
}

func (a *ackLog) add(sent, done time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The failover phase keeps a few minutes of them: a little memory.
	a.acks = append(a.acks, [2]time.Time{sent, done})
}

// firstSentAfter is the earliest answer to a push sent after t.
func (a *ackLog) firstSentAfter(t time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first time.Time
	for _, ack := range a.acks {
		if ack[0].After(t) && (first.IsZero() || ack[1].Before(first)) {
			first = ack[1]
		}
	}
	return first, !first.IsZero()
}

// waitUntil polls cond every 20 ms for at most failoverWait.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, failoverWait)
	defer cancel()
	for !cond() {
		if err := pauseFor(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
	return nil
}

// pauseFor waits d, or less when ctx ends.
func pauseFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
