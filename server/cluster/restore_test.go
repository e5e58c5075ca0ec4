package cluster_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// backupFile writes st's backup into a file and returns its path.
func backupFile(t *testing.T, st *store.Store) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := st.Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// restoreFile runs a cluster restore of the backup at path through the
// node at addr.
func restoreFile(path, addr string, opts cluster.RestoreRequest) (*cluster.RestoreResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	opts.Size = fi.Size()
	return cluster.Restore(context.Background(), addr, testSecret, f, opts)
}

// stateDigest is st's state without its applied index.
func stateDigest(t *testing.T, st *store.Store) string {
	t.Helper()
	d, err := st.StateDigest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writePhoto writes a small JPEG-looking file for an attempt.
func writePhoto(t *testing.T, size int) string {
	t.Helper()
	data := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{1, 2, 7}, size/3+1)...)[:size]
	path := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// oneServerCity is a city on one server: its warnings, a phone of a1
// that synced an attempt with a photo, and the backup taken of it then.
// The server is stopped, as a city moving to a cluster stops it.
type oneServerCity struct {
	warnings    map[string]string
	phone       *phone
	backup      string
	state       string
	incarnation [16]byte
	photo       string
}

func newOneServerCity(t *testing.T) *oneServerCity {
	single := servertest.Start(t, servertest.Options{AccessTTL: time.Hour})
	single.LoadCity(t)
	c := &oneServerCity{}
	c.warnings = single.Import(t, "center1",
		servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
		servertest.FeedRow("R2", servertest.UnitVillA1, syncproto.RiskMedium, time.Now().Add(-time.Hour)))
	c.phone = newPhone(t, single.URL, "a1")
	c.phone.sync()
	if _, err := c.phone.sdk.RecordAttempt(c.warnings["R1"], clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true,
		Outcome: syncproto.OutcomeDissuaded, Notes: "上门劝阻", Photos: []string{writePhoto(t, 3000)}}); err != nil {
		t.Fatal(err)
	}
	c.phone.sync()
	w, _ := c.phone.sdk.Warning(c.warnings["R1"])
	if len(w.Attempts) != 1 || len(w.Attempts[0].Photos) != 1 || len(w.MissingPhotos) != 0 {
		t.Fatalf("the one server's attempt: %+v, missing photos %v", w.Attempts, w.MissingPhotos)
	}
	c.photo = w.Attempts[0].Photos[0]
	if single.Photo(t, c.photo) == nil {
		t.Fatal("the one server holds no photo")
	}
	c.backup = backupFile(t, single.Store)
	c.state, c.incarnation = stateDigest(t, single.Store), single.Store.Incarnation()
	if err := single.Close(); err != nil {
		t.Fatal(err)
	}
	return c
}

// follower is a running member that does not lead.
func (c *testCluster) follower() *member {
	lead := c.leader()
	for _, m := range c.running() {
		if m != lead {
			return m
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// TestCluster_Restore: a one server's backup restored into a new cluster
// (through a follower: the backup goes on to the leader) becomes every
// node's state, its incarnation and photo included, equal to the one
// server's but for the applied index, which is raft's; the phone that
// synced with the one server goes on on every node with its cursor, no
// reset, and its new attempt reaches every node, a node restarted after
// the restore included. Then the way back: a
// node's backup restored onto one server makes a store that serves and
// takes writes (under a new incarnation, as every restore of one server).
func TestCluster_Restore(t *testing.T) {
	city := newOneServerCity(t)
	c := startCluster(t, 3)
	res, err := restoreFile(city.backup, c.follower().addr, cluster.RestoreRequest{})
	if err != nil {
		t.Fatalf("restore into a new cluster: %v", err)
	}
	if res.Backup.Warnings != 2 || res.Backup.Blobs != 1 || res.Index == 0 || res.Incarnation != hex.EncodeToString(city.incarnation[:]) {
		t.Fatalf("what the restore says it restored: %+v", res)
	}
	c.waitConverged("the restored state on every node")
	for _, m := range c.members {
		if got := m.st.AppliedIndex(); got < res.Index {
			t.Fatalf("%s's applied index is %d after a restore at %d", m.id, got, res.Index)
		}
		if m.st.Incarnation() != city.incarnation {
			t.Fatalf("%s's incarnation is not the one server's", m.id)
		}
		if got := stateDigest(t, m.st); got != city.state {
			t.Fatalf("%s's state differs from the one server's", m.id)
		}
		if missing, err := m.st.MissingPhotoFiles(); err != nil || len(missing) != 0 {
			t.Fatalf("%s lacks photo files %v (%v)", m.id, missing, err)
		}
	}

	// The phone goes on on every node with the cursor and token the one
	// server gave it (sync fails on a reset), and its new attempt, pushed
	// through one node, is on every node.
	for _, m := range c.members {
		city.phone.moveTo(m.srv.URL)
		city.phone.sync()
	}
	city.phone.visit(city.warnings["R2"], "电话劝阻")
	city.phone.sync()
	c.waitConverged("the phone's new attempt on every node")
	for _, m := range c.members {
		city.phone.moveTo(m.srv.URL)
		city.phone.sync()
		if got := city.phone.attempts(city.warnings["R2"]); got != 1 {
			t.Fatalf("the phone on %s holds %d attempts of R2, want 1", m.id, got)
		}
	}
	if got := stateDigest(t, c.members[0].st); got == city.state {
		t.Fatal("the new attempt changed no state")
	}
	// A node restarting after the restore keeps it (its store is at the
	// restored snapshot's index or past it) and catches up.
	restarted := c.follower()
	c.stop(restarted)
	city.phone.moveTo(c.leader().srv.URL)
	city.phone.visit(city.warnings["R2"], "第二次电话")
	city.phone.sync()
	c.restart(restarted)
	c.waitConverged("the restarted node to catch up")
	city.phone.moveTo(restarted.srv.URL)
	city.phone.sync()

	// The way back: a follower's backup (what `fieldsyncd backup` of a
	// node takes) restored onto one server.
	nodeBackup := backupFile(t, c.follower().st)
	dir := filepath.Join(t.TempDir(), "one")
	f, err := os.Open(nodeBackup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := storefile.Restore(context.Background(), f, dir, storefile.RestoreOptions{}); err != nil {
		t.Fatalf("restore a node's backup onto one server: %v", err)
	}
	one := servertest.Start(t, servertest.Options{Dir: dir, AccessTTL: time.Hour})
	city.phone.moveTo(one.URL)
	rep, err := city.phone.sdk.Sync(context.Background())
	if err != nil || !rep.Reset {
		t.Fatalf("the first sync on the restored one server: %+v %v, want a reset", rep, err)
	}
	city.phone.visit(city.warnings["R1"], "回访")
	city.phone.sync()
	if got := city.phone.attempts(city.warnings["R1"]); got != 2 {
		t.Fatalf("the phone on the restored one server holds %d attempts of R1, want 2", got)
	}
}

// TestCluster_RestoreRefused: a cluster that holds a city refuses a
// restore, and every cluster refuses a damaged backup, with nothing
// changed; --force restores over the city, and a new incarnation can be
// asked for.
func TestCluster_RestoreRefused(t *testing.T) {
	city := newOneServerCity(t)
	c := startCluster(t, 3)
	c.members[0].srv.LoadCity(t)
	c.waitConverged("the cluster's own city on every node")
	lead := c.leader()
	before, applied := stateDigest(t, lead.st), lead.st.AppliedIndex()
	unchanged := func(what string) {
		t.Helper()
		c.waitConverged(what)
		if stateDigest(t, lead.st) != before || lead.st.AppliedIndex() != applied {
			t.Fatalf("%s changed the cluster", what)
		}
	}

	_, err := restoreFile(city.backup, lead.addr, cluster.RestoreRequest{})
	if err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Fatalf("a restore into a cluster with data: %v", err)
	}
	unchanged("the refused restore")

	// A damaged byte in the middle of the database, and the backup cut
	// short: refused even with force.
	data, err := os.ReadFile(city.backup)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(data)
	damaged[len(damaged)/3] ^= 0xff
	for name, b := range map[string][]byte{"damaged": damaged, "cut": data[:len(data)/2]} {
		path := filepath.Join(t.TempDir(), name+".tar")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := restoreFile(path, c.follower().addr, cluster.RestoreRequest{Force: true}); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("a restore of a %s backup: %v", name, err)
		}
		unchanged(fmt.Sprintf("the %s backup", name))
	}

	// On purpose: the city on the cluster is replaced.
	if _, err := restoreFile(city.backup, c.follower().addr, cluster.RestoreRequest{Force: true}); err != nil {
		t.Fatalf("a forced restore: %v", err)
	}
	c.waitConverged("the forced restore on every node")
	for _, m := range c.members {
		if m.st.Incarnation() != city.incarnation || stateDigest(t, m.st) != city.state {
			t.Fatalf("%s does not hold the backup's state after a forced restore", m.id)
		}
	}

	// A lost cluster's older backup: a new incarnation, the same on
	// every node, so phones whose cursors are ahead of it reset.
	res, err := restoreFile(city.backup, c.follower().addr, cluster.RestoreRequest{Force: true, NewIncarnation: true})
	if err != nil {
		t.Fatalf("a restore with a new incarnation: %v", err)
	}
	c.waitConverged("the new incarnation on every node")
	inc := c.members[0].st.Incarnation()
	if inc == city.incarnation || res.Incarnation != hex.EncodeToString(inc[:]) {
		t.Fatalf("the incarnation after a restore with a new one: %x, the backup's %x, the answer's %s", inc, city.incarnation, res.Incarnation)
	}
}
