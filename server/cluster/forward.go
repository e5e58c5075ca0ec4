package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Forwarded writes. A follower's store hands each group of writes to
// Replicate like the leader's does; the follower sends the group's entry
// to the leader over the cluster port, the leader proposes it to raft and
// answers with its index once it is committed and applied there, and the
// follower answers its requests from its own state machine's apply of
// that index (fsm.go). Every write of a node, whatever made it (a push, a
// sign-in, the audit entry of a read, the upkeep), goes through the log
// this way, and a node answers a write only once it has applied it, so a
// device that pushed through a node reads its push back there.
//
// One entry per connection: a request is the entry's length (4 bytes, big
// endian) and its bytes; the answer a status byte, then the index (8
// bytes) when it is fwdOK, or a message's length and text.

const (
	fwdOK        byte = 0
	fwdNotLeader byte = 1
	fwdFailed    byte = 2
	// maxEntry bounds a forwarded entry; a group of the largest requests
	// the server takes stays far below it.
	maxEntry = 256 << 20
)

// errNotLeader is the leader's word that it is not the leader any more.
var errNotLeader = errors.New("the node forwarded to is not the leader")

// forwardTo sends entry to the leader at addr and returns the index it
// was committed at.
func forwardTo(ctx context.Context, addr string, secret, entry []byte, timeout time.Duration) (uint64, error) {
	conn, err := dialAuth(addr, secret, kindForward, timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(entry)))
	if _, err := conn.Write(append(n[:], entry...)); err != nil {
		return 0, fmt.Errorf("forward to %s: %w", addr, err)
	}
	var status [1]byte
	if _, err := io.ReadFull(conn, status[:]); err != nil {
		return 0, fmt.Errorf("forward to %s: %w", addr, err)
	}
	switch status[0] {
	case fwdOK:
		var idx [8]byte
		if _, err := io.ReadFull(conn, idx[:]); err != nil {
			return 0, fmt.Errorf("forward to %s: %w", addr, err)
		}
		return binary.BigEndian.Uint64(idx[:]), nil
	case fwdNotLeader:
		return 0, errNotLeader
	}
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return 0, fmt.Errorf("forward to %s: %w", addr, err)
	}
	msg := make([]byte, min(binary.BigEndian.Uint32(n[:]), 4096))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return 0, fmt.Errorf("forward to %s: %w", addr, err)
	}
	return 0, fmt.Errorf("the leader at %s: %s", addr, msg)
}

// serveForward answers one forwarded entry: the leader proposes it.
func (n *Node) serveForward(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(n.cfg.ApplyTimeout))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return
	}
	if l := binary.BigEndian.Uint32(size[:]); l > maxEntry {
		return
	}
	entry := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, entry); err != nil {
		return
	}
	_ = conn.SetDeadline(time.Now().Add(n.cfg.ApplyTimeout + 5*time.Second))
	index, err := n.propose(entry)
	switch {
	case err == nil:
		var idx [9]byte
		idx[0] = fwdOK
		binary.BigEndian.PutUint64(idx[1:], index)
		_, _ = conn.Write(idx[:])
	case errors.Is(err, errNotLeader):
		_, _ = conn.Write([]byte{fwdNotLeader})
	default:
		msg := err.Error()
		out := []byte{fwdFailed, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
		_, _ = conn.Write(append(out, msg...))
	}
}
