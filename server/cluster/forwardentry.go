package cluster

import (
	"context"
	"errors"
	"time"
)

// ErrNotLeader is ForwardEntry's answer from a node that is not the
// leader: try the next one.
var ErrNotLeader = errNotLeader

// ForwardEntry hands an entry (a group of store commands, as
// store.Options.Replicate receives it) to the node at addr, the cluster
// address of the leader, over the authenticated cluster port, and returns
// the index it was committed and applied at there. It is how a program
// that is not a node writes through the log: the cluster's first admin is
// made this way by a store opened aside whose Replicate forwards
// (server/clustertest), since fieldsyncd init writes a store directly.
// ErrNotLeader when the node does not lead.
func ForwardEntry(ctx context.Context, addr string, secret, entry []byte, timeout time.Duration) (uint64, error) {
	index, err := forwardTo(ctx, addr, secret, entry, timeout)
	if errors.Is(err, errNotLeader) {
		return 0, ErrNotLeader
	}
	return index, err
}
