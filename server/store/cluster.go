package store

import (
	"context"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Reads on a node of a cluster (docs/CLUSTER.md). A phone's cursor names
// the cluster's one incarnation and a seq of its log, and means the same on
// every node; but a follower may not have applied yet what another node
// answered the phone from. Such a cursor is not a reason to reset the
// phone: the pull waits for this node to catch up, up to
// Options.CursorWait, then answers unavailable with Retry-After, and the
// phone comes back (to this node or another). One node leaves CursorWait
// 0 and never waits.

// errCursorAhead is pull's word that the cursor is newer than this node's
// log; Pull waits on it.
var errCursorAhead = errors.New("the cursor is newer than this node's log")

// RetryAfterCatchUp is the Retry-After of a pull that waited in vain for
// this node to catch up with its cursor.
const RetryAfterCatchUp = time.Second

// notCaughtUp is the answer of a pull this node cannot serve yet.
func notCaughtUp(message string) *syncproto.Error {
	return (&syncproto.Error{Code: syncproto.CodeUnavailable, Message: message}).With("retry_after", int(RetryAfterCatchUp/time.Second))
}

// checkCaughtUp refuses a pull on a node of a cluster that has applied
// nothing yet (its incarnation is not yet the cluster's, so any cursor
// would look foreign and reset the phone), and reports a cursor of this
// incarnation and scope that is ahead of the log at head.
func (s *Store) checkCaughtUp(cursor string, cur, want syncproto.Cursor, head uint64) error {
	if s.applied.Load() == 0 {
		return notCaughtUp("this server is joining its cluster and has no data yet; retry shortly")
	}
	if cursor != "" && cur.Incarnation == want.Incarnation && cur.Scope == want.Scope && (cur.Seq > head || cur.Snapshot > head) {
		return errCursorAhead
	}
	return nil
}

// awaitCursor reads the pull again after each group this node applies,
// until its cursor is no longer ahead or Options.CursorWait has passed.
func (s *Store) awaitCursor(ctx context.Context, actor syncproto.Actor, page PullPage) (*syncproto.PullResponse, string, error) {
	timer := time.NewTimer(s.cursorWait)
	defer timer.Stop()
	for {
		next := s.nextProgress()
		resp, scope, err := s.pull(actor, page)
		if !errors.Is(err, errCursorAhead) {
			return resp, scope, err
		}
		select {
		case <-next:
		case <-timer.C:
			return nil, "", notCaughtUp("this server has not yet caught up with your last sync; retry shortly")
		case <-s.closing:
			return nil, "", notCaughtUp("this server is shutting down; retry shortly")
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// nextProgress is the channel the next applied group closes.
func (s *Store) nextProgress() <-chan struct{} {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	return s.progress
}

// progressed wakes the pulls waiting for this node to catch up, after a
// group or a snapshot is applied; nothing on one node.
func (s *Store) progressed() {
	if s.cursorWait <= 0 {
		return
	}
	s.progressMu.Lock()
	close(s.progress)
	s.progress = make(chan struct{})
	s.progressMu.Unlock()
}
