package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// A backup becomes a cluster's state (`fieldsyncd cluster restore`,
// docs/CLUSTER.md): a single server's store moving to three nodes, or a
// lost cluster coming back. The operator streams the backup to the leader
// over the control connection; the leader stages it in a file and checks
// it through, then hands it to raft's Restore, the user snapshot Consul's
// `snapshot restore` uses. Raft stores it as a snapshot at an index past
// its log, has this node's FSM install it, and sends it to the followers
// as their next snapshot: each node's store becomes the backup's, with
// the backup's incarnation (no phone resets) and that index as its applied
// index.
//
// Raft panics when the FSM refuses a user snapshot, so everything the
// install checks is checked before raft sees the backup
// (storefile.CheckBackup).

// restoreMagic starts a snapshot that is a backup restored at an index
// (then 8 bytes: the index, big-endian). A snapshot of the store itself
// starts with a tar header, whose first bytes are the manifest's name.
const restoreMagic = "fieldsync backup restored at\x00"

// restoreGap is how far past raft's last index the leader places the
// restored snapshot: raft takes the larger of that and its own last index,
// so entries appended meanwhile (writes are refused during a restore, but
// one may already be on its way to the log) cannot move it.
const restoreGap = 16

// DefaultRestoreTimeout bounds a restore once the backup is on the
// leader: raft's copy, the install, and the followers' installs.
const DefaultRestoreTimeout = 30 * time.Minute

// restoreIdle is how long the backup's transfer may stand still.
const restoreIdle = 2 * time.Minute

// RestoreRequest is OpRestore's: a backup of Size bytes follows the
// node's first answer.
type RestoreRequest struct {
	Size int64 `json:"size"`
	// Force replaces a cluster that holds more than its founding
	// entries; without it such a cluster is refused.
	Force bool `json:"force,omitempty"`
	// NewIncarnation gives the restored state a new incarnation, through
	// the log, so every phone resets at its next sync: for a backup
	// older than what phones have synced (a lost cluster's last night's
	// backup), whose cursors may be ahead of its log. Without it the
	// backup's incarnation is kept and no phone resets: for a single
	// server stopped right after its backup.
	NewIncarnation bool `json:"new_incarnation,omitempty"`
}

// RestoreResult is what a restore installed.
type RestoreResult struct {
	// Index is the raft index the backup was restored at.
	Index uint64 `json:"index"`
	// Incarnation is the cluster's incarnation after the restore (hex):
	// the backup's, or a new one (RestoreRequest.NewIncarnation).
	Incarnation string `json:"incarnation"`
	// Backup is the backup's manifest as the leader read it.
	Backup store.BackupInfo `json:"backup"`
}

// snapshotHeader marks a backup restored at index.
func snapshotHeader(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(restoreMagic), index)
}

// restoredAt reads a restored backup's header, if r starts with one, and
// returns the index it was restored at (0 when r is a snapshot of the
// store).
func restoredAt(r *bufio.Reader) (uint64, error) {
	head, err := r.Peek(len(restoreMagic))
	if err != nil || string(head) != restoreMagic {
		// Not a restored backup: the store's own snapshot reader says
		// what is wrong with it, if anything.
		return 0, nil
	}
	var h [len(restoreMagic) + 8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("a restored backup's header: %w", err)
	}
	return binary.BigEndian.Uint64(h[len(restoreMagic):]), nil
}

// serveRestore is the leader's side of OpRestore on conn, whose request
// dec has read.
func (n *Node) serveRestore(conn net.Conn, dec *json.Decoder, req *RestoreRequest) ControlResponse {
	if req == nil || req.Size <= 0 {
		return ControlResponse{Error: "restore needs the backup's size"}
	}
	if !n.Leads() {
		return ControlResponse{NotLeader: true, Error: "this node is not the leader"}
	}
	if !n.restoring.CompareAndSwap(false, true) {
		return ControlResponse{Error: "a restore is already running on this node"}
	}
	restoring := true
	defer func() {
		if restoring {
			n.restoring.Store(false)
		}
	}()
	if !req.Force {
		if err := n.refuseData(); err != nil {
			return ControlResponse{Error: err.Error()}
		}
	}
	// The operator's side sends the backup once told to.
	if err := json.NewEncoder(conn).Encode(ControlResponse{Ready: true, Status: n.Status()}); err != nil {
		return ControlResponse{Error: err.Error()}
	}
	from := io.LimitReader(io.MultiReader(dec.Buffered(), &idleReader{conn: conn, idle: restoreIdle}), req.Size)
	res, err := n.restore(from, req.Size, req.Force)
	if err != nil {
		n.log.Error("cluster: restore from a backup failed", "err", err)
		// Read what the sender still sends, so that it reads this
		// answer rather than a reset connection.
		_, _ = io.Copy(io.Discard, from)
		return ControlResponse{Error: err.Error()}
	}
	// Writes again: the new incarnation is one, through the log.
	n.restoring.Store(false)
	restoring = false
	if req.NewIncarnation {
		ctx, cancel := context.WithTimeout(n.life, n.cfg.ApplyTimeout)
		defer cancel()
		if err := n.st.NewIncarnation(ctx); err != nil {
			return ControlResponse{Error: fmt.Sprintf("the backup was restored at index %d, but its new incarnation failed (phones whose cursor is ahead of its log will not reset; run the restore again with --force): %v", res.Index, err)}
		}
	}
	inc := n.st.Incarnation()
	res.Incarnation = hex.EncodeToString(inc[:])
	return ControlResponse{Restored: res}
}

// refuseData refuses a store holding more than a new cluster's founding
// entries make (its incarnation, signing keys, and the root unit and
// admin of `cluster init`): a restore replaces everything, and a cluster
// with a city's data is restored over only on purpose (--force).
func (n *Node) refuseData() error {
	c, err := n.st.Contents()
	if err != nil {
		return err
	}
	if c.Warnings > 0 || c.Photos > 0 || c.Phones > 0 || c.Units > 1 || c.Users > 1 {
		return fmt.Errorf("this cluster already holds data (%d warnings, %d units, %d users, %d phones, %d photos), which a restore would replace; restore into a new cluster, or give --force to replace it",
			c.Warnings, c.Units, c.Users, c.Phones, c.Photos)
	}
	return nil
}

// restore stages the backup in r (size bytes) beside the store, checks it
// through, and has raft restore it.
func (n *Node) restore(r io.Reader, size int64, force bool) (*RestoreResult, error) {
	dir, err := os.MkdirTemp(n.cfg.Dir, ".restore-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "backup.tar"))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	cw := &countWriter{w: f}
	scratch := filepath.Join(dir, "check")
	info, err := storefile.CheckBackup(io.TeeReader(r, cw), scratch)
	if err != nil {
		return nil, fmt.Errorf("restore: the backup was refused, nothing changed: %w", err)
	}
	// Nothing follows a backup's end but what the sender added; it is
	// kept, so the size is the stream's.
	if _, err := io.Copy(cw, r); err != nil {
		return nil, fmt.Errorf("restore: receive the backup: %w", err)
	}
	if cw.n != size {
		return nil, fmt.Errorf("restore: the backup ended after %d of %d bytes, nothing changed", cw.n, size)
	}
	if err := os.RemoveAll(scratch); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	// The transfer took a while: look again.
	if !force {
		if err := n.refuseData(); err != nil {
			return nil, err
		}
	}
	if !n.Leads() {
		return nil, errors.New("restore: this node lost its leadership while the backup came; nothing changed, run the restore again")
	}
	index := n.raft.LastIndex() + restoreGap
	header := snapshotHeader(index)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: index - 1, Size: int64(len(header)) + size}
	n.log.Info("cluster: restoring a backup", "index", index, "bytes", size, "last_seq", info.LastSeq, "warnings", info.Warnings, "photos", info.Blobs)
	if err := n.raft.Restore(meta, io.MultiReader(bytes.NewReader(header), f), n.cfg.RestoreTimeout); err != nil {
		return nil, fmt.Errorf("restore: raft: %w", err)
	}
	if got := n.st.AppliedIndex(); got != index {
		// Raft placed it past an entry that reached its log meanwhile.
		// Harmless (the store applies every entry above its index, and
		// a node restarting restores the snapshot and the entries after
		// it), but not what was meant.
		n.log.Warn("cluster: the backup was restored at another index than planned", "planned", index, "store", got)
	}
	n.log.Info("cluster: a backup was restored", "index", index)
	return &RestoreResult{Index: index, Backup: *info}, nil
}

// idleReader gives each read of conn restoreIdle.
type idleReader struct {
	conn net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(r.idle))
	return r.conn.Read(p)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore streams the backup in r (opts.Size bytes) to the cluster's leader,
// through the node at addr, and returns what the leader restored. A
// follower names the leader before anything is sent, and the request goes
// there. Nothing is changed when the leader refuses the backup or the
// cluster's data.
func Restore(ctx context.Context, addr string, secret []byte, r io.Reader, opts RestoreRequest) (*RestoreResult, error) {
	req := ControlRequest{Op: OpRestore, Restore: &opts}
	res, leader, err := restoreAt(ctx, addr, secret, req, r)
	if err == nil && leader != "" {
		if leader == addr {
			return nil, fmt.Errorf("%s: no leader now (no quorum?); try again shortly", addr)
		}
		res, leader, err = restoreAt(ctx, leader, secret, req, r)
		if err == nil && leader != "" {
			return nil, fmt.Errorf("%s: the leader changed; try again", addr)
		}
	}
	return res, err
}

// restoreAt runs the restore at addr, or returns the leader's address
// when addr is not the leader.
func restoreAt(ctx context.Context, addr string, secret []byte, req ControlRequest, r io.Reader) (*RestoreResult, string, error) {
	conn, err := dialAuth(addr, secret, kindControl, 10*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("reach the cluster port %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// No newline after the request: the backup's first byte follows the
	// node's ready answer.
	b, err := json.Marshal(req)
	if err != nil {
		return nil, "", err
	}
	if _, err := conn.Write(b); err != nil {
		return nil, "", fmt.Errorf("%s: %w", addr, err)
	}
	dec := json.NewDecoder(conn)
	var ready ControlResponse
	if err := dec.Decode(&ready); err != nil {
		return nil, "", fmt.Errorf("%s: no answer: %w", addr, err)
	}
	switch {
	case ready.NotLeader:
		leader := ready.Status.LeaderAddr
		if leader == "" {
			leader = addr
		}
		return nil, leader, nil
	case ready.Error != "":
		return nil, "", fmt.Errorf("%s (%s): %s", ready.Status.ID, ready.Status.Addr, ready.Error)
	case !ready.Ready:
		return nil, "", fmt.Errorf("%s: an unexpected answer", addr)
	}
	sent, err := io.Copy(conn, io.LimitReader(r, req.Restore.Size))
	if err == nil && sent != req.Restore.Size {
		err = fmt.Errorf("the backup has %d bytes, not %d", sent, req.Restore.Size)
	}
	var done ControlResponse
	if derr := dec.Decode(&done); derr != nil {
		if err != nil {
			return nil, "", fmt.Errorf("send the backup to %s: %w", addr, err)
		}
		return nil, "", fmt.Errorf("%s: no answer after the backup: %w", addr, derr)
	}
	if done.Error != "" {
		return nil, "", fmt.Errorf("%s (%s): %s", done.Status.ID, done.Status.Addr, done.Error)
	}
	if done.Restored == nil {
		return nil, "", fmt.Errorf("%s: an unexpected answer", addr)
	}
	return done.Restored, "", nil
}
