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
	sorted := make([][]syncproto.Op, len(pushes))
	for i, p := range pushes {
		var err error
		if sorted[i], err = pushable(p.Ops); err != nil {
			return nil, err
		}
	}
	resps := make([]*syncproto.PushResponse, len(pushes))
	err := s.write(ctx, func(tx *bolt.Tx) error {
		for i, p := range pushes {
			var err error
			if resps[i], err = s.push(tx, p.Actor, sorted[i], p.At.UTC()); err != nil {
				return fmt.Errorf("push %d of %d: %w", i+1, len(pushes), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resps, nil
}
