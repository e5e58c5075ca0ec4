package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Replayed is one device's push at a time of its own, for Replay.
type Replayed struct {
	At    time.Time
	Actor syncproto.Actor
	Ops   []syncproto.Op
}

// Replay writes pushes in order in one transaction, each as Push would
// had it been received at its At: for writing a history into a new store
// (server/demo), whose log, states, indexes and statistics then are
// those the pushes would have made at their times. One transaction for
// many pushes is what makes a month of history quick to write; Push
// itself reads the clock, and a clock moved between Pushes costs a
// transaction each. An error Push would return ends the replay at that
// push, and is returned; the pushes before it are written, as a group
// commit writes the requests before a refused one.
func (s *Store) Replay(ctx context.Context, pushes []Replayed) ([]*syncproto.PushResponse, error) {
	sorted := make([]replayedPush, len(pushes))
	for i, p := range pushes {
		ops, err := pushable(p.Ops)
		if err != nil {
			return nil, err
		}
		sorted[i] = replayedPush{At: p.At, Actor: principalOf(p.Actor), Ops: ops}
	}
	return submit[[]*syncproto.PushResponse](ctx, s, &replayCmd{Pushes: sorted, Limits: s.warningLimits})
}

// replayedPush is a Replayed as a command carries it.
type replayedPush struct {
	At    time.Time      `json:"at"`
	Actor principal      `json:"actor"`
	Ops   []syncproto.Op `json:"ops"`
}

// replayCmd is Replay's pushes, each with its time.
type replayCmd struct {
	Pushes []replayedPush          `json:"pushes"`
	Limits syncproto.WarningLimits `json:"limits"`
}

func (*replayCmd) kind() cmdKind { return cmdReplay }

func (c *replayCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	resps := make([]*syncproto.PushResponse, len(c.Pushes))
	for i, p := range c.Pushes {
		var err error
		if resps[i], err = s.push(tx, p.Actor.actor(), p.Ops, p.At.UTC(), c.Limits); err != nil {
			return nil, fmt.Errorf("push %d of %d: %w", i+1, len(c.Pushes), err)
		}
	}
	return resps, nil
}
