package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// runCmd runs one fieldsyncd command and returns its output.
func runCmd(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

// nodeArgs are serve's flags for a node of a test cluster.
func nodeArgs(t *testing.T, id, raftAddr, secret string, extra ...string) []string {
	return append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--node-id", id, "--raft-addr", raftAddr,
		"--cluster-secret-file", secret}, extra...)
}

// TestCluster_Commands: a new one-node cluster gets its root unit and
// admin from `cluster init` (a second init without a password is
// refused, and `init`, `compact` and `keys rotate` refuse a node's
// directory); a second node started with no peers is added with
// `cluster add` and serves the same admin; each node's /metrics tells its
// raft state; `cluster status` on either lists both; `cluster remove`
// through the follower takes it out.
func TestCluster_Commands(t *testing.T) {
	secret := writeFile(t, "a cluster secret of the tests, 32+ bytes long\n")
	pw := writeFile(t, adminPassword+"\n")
	addr1, addr2 := servertest.FreeAddr(t), servertest.FreeAddr(t)
	args1 := nodeArgs(t, "node1", addr1, secret, "--peers", "node1="+addr1)
	url1, stop1 := startRun(t, args1...)
	if _, err := runCmd("init", "--data", args1[2], "--admin-password-file", pw); err == nil || !strings.Contains(err.Error(), "cluster init") {
		t.Fatalf("init on a node's directory: %v", err)
	}
	// Nor does any command that writes a stopped store directly.
	for _, cmd := range [][]string{{"compact", "--data", args1[2]}, {"keys", "rotate", "--data", args1[2]}} {
		if _, err := runCmd(cmd...); err == nil || !strings.Contains(err.Error(), "raft log") {
			t.Fatalf("%s on a node's directory: %v", cmd[0], err)
		}
	}
	if _, err := runCmd("cluster", "init", "--node", addr1, "--cluster-secret-file", secret, "--admin-password-file", pw, "--root-unit", "4110", "Xuchang"); err != nil {
		t.Fatalf("cluster init: %v", err)
	}
	signInAdmin(t, remote.New(url1))
	if _, err := runCmd("cluster", "init", "--node", addr1, "--cluster-secret-file", secret); err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Fatalf("a second cluster init with no password: %v", err)
	}

	// A node with no peers waits to be added before it serves.
	started := make(chan string, 1)
	var stop2 func() error
	go func() {
		var url string
		url, stop2 = startRun(t, nodeArgs(t, "node2", addr2, secret)...)
		started <- url
	}()
	if out, err := runCmd("cluster", "add", "--node", addr1, "--cluster-secret-file", secret, "--id", "node2", "--addr", addr2); err != nil {
		t.Fatalf("cluster add: %v %s", err, out)
	}
	var url2 string
	select {
	case url2 = <-started:
	case <-time.After(time.Until(testwait.Deadline(t))):
		t.Fatal("the added node did not start serving")
	}
	// The sign-in on the follower was a write forwarded to the leader.
	signInAdmin(t, remote.New(url2))
	// At least that one: the follower may have forwarded others of its
	// own (a flush of last-seen times) by the time the metrics are read.
	for url, want := range map[string][]string{
		url1: {`fieldsync_raft_state\{state="leader"\} 1\n`, `fieldsync_raft_quorum 1\n`},
		url2: {`fieldsync_raft_state\{state="follower"\} 1\n`, `fieldsync_raft_forwarded_writes_total\{result="ok"\} [1-9][0-9]*\n`},
	} {
		metrics := getMetrics(t, url)
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(metrics) {
				t.Errorf("%s/metrics has no line matching %s", url, w)
			}
		}
	}

	out, err := runCmd("cluster", "status", "--node", addr2, "--cluster-secret-file", secret)
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	for _, want := range []string{"node1", "node2", "leader", "follower"} {
		if !strings.Contains(out, want) {
			t.Fatalf("cluster status does not say %q:\n%s", want, out)
		}
	}

	if out, err := runCmd("cluster", "remove", "--node", addr2, "--cluster-secret-file", secret, "--id", "node2"); err != nil {
		t.Fatalf("cluster remove through the follower: %v %s", err, out)
	}
	testwait.Until(t, "node2 out of the configuration", func() bool {
		out, err := runCmd("cluster", "status", "--node", addr1, "--cluster-secret-file", secret)
		return err == nil && !strings.Contains(out, "node2")
	})
	if err := stop2(); err != nil {
		t.Fatalf("stop node2: %v", err)
	}
	if err := stop1(); err != nil {
		t.Fatalf("stop node1: %v", err)
	}
}

// getMetrics is a server's /metrics (no token: loopback).
func getMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// TestCluster_Restore: `cluster restore` makes a new one-node cluster's
// state a single server's backup (`fieldsyncd backup`): the single
// server's admin signs in on the node. A second restore is refused, the
// cluster holding data now (the backup's own sign-in is a device), and
// goes through with --force (and a new incarnation, as asked). Missing
// flags are named.
func TestCluster_Restore(t *testing.T) {
	ctx := context.Background()
	pw := writeFile(t, adminPassword+"\n")
	single := t.TempDir()
	if _, err := runCmd("init", "--data", single, "--admin-password-file", pw); err != nil {
		t.Fatal(err)
	}
	url, stop := startRun(t, "serve", "--data", single, "--addr", "127.0.0.1:0")
	backup := filepath.Join(t.TempDir(), "single.tar")
	if out, err := runCmd("backup", "--url", url, "--user", "admin", "--password-file", pw, "--out", backup); err != nil {
		t.Fatalf("backup: %v %s", err, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	secret := writeFile(t, "a cluster secret of the tests, 32+ bytes long\n")
	addr := servertest.FreeAddr(t)
	nodeURL, stopNode := startRun(t, nodeArgs(t, "node1", addr, secret, "--peers", "node1="+addr)...)
	restore := func(extra ...string) (string, error) {
		return runCmd(append([]string{"cluster", "restore", "--node", addr, "--cluster-secret-file", secret, "--from", backup}, extra...)...)
	}
	out, err := restore()
	if err != nil || !strings.Contains(out, "restored "+backup) || !strings.Contains(out, "no reset") {
		t.Fatalf("cluster restore: %v\n%s", err, out)
	}
	signInAdmin(t, remote.New(nodeURL))
	if _, err := restore(); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Fatalf("a second restore without --force: %v", err)
	}
	if out, err := restore("--force", "--new-incarnation"); err != nil || !strings.Contains(out, "new incarnation") {
		t.Fatalf("a second restore with --force and a new incarnation: %v\n%s", err, out)
	}
	signInAdmin(t, remote.New(nodeURL))
	if err := stopNode(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-secret-file", secret, "--from", backup}, "--node is required"},
		{[]string{"--node", addr, "--from", backup}, "--cluster-secret-file is required"},
		{[]string{"--node", addr, "--cluster-secret-file", secret}, "--from is required"},
		{[]string{"--node", addr, "--cluster-secret-file", secret, "--from", backup, "extra"}, `unexpected argument "extra"`},
		{[]string{"--node", addr, "--cluster-secret-file", secret, "--from", filepath.Join(t.TempDir(), "none.tar")}, "no such file"},
	} {
		err := run(ctx, append([]string{"cluster", "restore"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cluster restore %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
