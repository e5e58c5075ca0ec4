package store

import (
	"context"
	"errors"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// remainingCap bounds how far a pull counts the changes still to come: the
// count is for a progress bar, and past this it is "many".
const remainingCap = 100_000

// PullPage says which page of changes a pull asks for.
type PullPage struct {
	// Cursor is where the device stands ("" the first time).
	Cursor string
	// Limit caps the page's changes: DefaultPullLimit when 0, at most
	// MaxPullLimit.
	Limit int
	// MaxBytes, when above 0, is the page's byte budget: changes are
	// added until their MessagePack encodings (syncproto.MsgpackSize)
	// reach it, so a page goes over it by at most its last change.
	MaxBytes int
	// Wait, when above 0, holds a pull that finds no change due (an empty
	// page, not a reset) until a change is committed in the device's
	// scope, then answers with it; or answers the empty page when Wait
	// has passed, Release is closed, the store closes, or the same device
	// holds another pull. It ends with ctx's error when ctx ends first
	// (the client went away).
	Wait time.Duration
	// Summary sends each warning as Warning.Summarize makes it
	// (syncproto.DetailSummary).
	Summary bool
	// Release, when closed, ends every wait at once: a server about to
	// stop answers its held pulls instead of keeping them to the end.
	Release <-chan struct{}
	// Have are warnings the device holds already (syncproto.Have): a put
	// of one of them at the version and state hash it gives is left out
	// of the page and named in its Kept. Ignored by a pull from nothing
	// (a first pull, a reset) and a summary pull.
	Have []syncproto.Have
}

// Pull returns the changes in the actor's scope after page.Cursor, each
// record once with its current state, as many as page's limit and byte
// budget allow, waiting for one as page.Wait says when none is due. It
// costs what the scope changed: one seek into the scope's index and a walk
// over its newer entries, whatever the log's size. A cursor from another
// store or scope, or newer than the log, gives a reset page from the
// start. It returns forbidden or device_revoked for a device that may not
// pull.
func (s *Store) Pull(ctx context.Context, actor syncproto.Actor, page PullPage) (*syncproto.PullResponse, error) {
	resp, scope, err := s.pull(actor, page)
	if errors.Is(err, errCursorAhead) {
		resp, scope, err = s.awaitCursor(ctx, actor, page)
	}
	if err != nil || page.Wait <= 0 || !idle(resp) {
		return resp, err
	}
	// The wait's timer starts before the hold is counted (PullsWaiting):
	// a pull counted as held always has its timer running.
	timeout, stop := s.pullTimer(page.Wait)
	defer stop()
	h, ok := s.notify.hold(scope, actor.DeviceID)
	if !ok {
		// As many pulls are held as allowed: this one answers now, and
		// the device polls again.
		return resp, nil
	}
	defer h.end()
	for {
		// Read again now that the hold is in place: a commit between the
		// last read and the hold would otherwise go unnoticed until the
		// wait ends.
		next, nextScope, err := s.pull(actor, page)
		if err != nil || !idle(next) || nextScope != scope {
			return next, err
		}
		resp = next
		select {
		case <-h.changed():
			h.renew()
		case <-timeout:
			return resp, nil
		case <-page.Release:
			return resp, nil
		case <-h.superseded:
			return resp, nil
		case <-s.closing:
			return resp, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// idle reports whether a pull found nothing to do: no change, no state
// kept (a page of kept puts moves the cursor), no reset.
func idle(resp *syncproto.PullResponse) bool {
	return len(resp.Changes) == 0 && len(resp.Kept) == 0 && !resp.Reset && !resp.More
}

// pull is one read of a pull: the page, and the scope bucket it read.
func (s *Store) pull(actor syncproto.Actor, page PullPage) (*syncproto.PullResponse, string, error) {
	cursor := page.Cursor
	cur, perr := syncproto.ParseCursor(cursor)
	if perr != nil {
		return nil, "", perr
	}
	limit := page.Limit
	if limit <= 0 {
		limit = syncproto.DefaultPullLimit
	}
	limit = min(limit, syncproto.MaxPullLimit)
	var resp *syncproto.PullResponse
	var scope string
	err := s.db.View(func(tx *bolt.Tx) error {
		dev, user, err := s.deviceAndUser(tx, actor, syncproto.CodeForbidden)
		if err != nil {
			return err
		}
		scope = ScopeOf(user)
		inc := s.Incarnation()
		want := syncproto.Cursor{Scope: syncproto.ScopeHash([]string{scope})}
		// Eight random bytes tell stores apart well enough for a cursor.
		copy(want.Incarnation[:], inc[:8])
		reset := false
		head, horizon := tx.Bucket(schema.BucketLog).Sequence(), schema.ScopeHorizon(tx, scope)
		// A cursor below its scope's tombstone horizon may have missed
		// removes that compaction dropped from that scope (CompactIndex):
		// it starts over, unless it is a page of a pull that started from
		// nothing above that horizon (its Floor). A scope that lost no
		// tombstone above the cursor carries on, however old the cursor.
		if s.cursorWait > 0 {
			if err := s.checkCaughtUp(cursor, cur, want, head); err != nil {
				return err
			}
		}
		if cursor != "" && (cur.Incarnation != want.Incarnation || cur.Scope != want.Scope || cur.Seq > head || cur.Snapshot > head || max(cur.Seq, cur.Floor) < horizon) {
			reset = true
		}
		if cursor == "" || reset {
			// A pull from nothing: the device holds none of the
			// scope, so the removes committed before now are of
			// records it never had (pullScope).
			want.Floor, want.Snapshot = horizon, head
		} else {
			want.Seq, want.Floor, want.Snapshot = cur.Seq, cur.Floor, cur.Snapshot
		}
		var have map[string]syncproto.Have
		if cursor != "" && !reset && !page.Summary {
			have = haveByID(page.Have)
		}
		resp, err = s.pullScope(tx, scope, want, pageSize{limit: limit, maxBytes: page.MaxBytes}, page.Summary, have)
		if err != nil {
			return err
		}
		if !resp.More {
			// The device has now seen its scope up to the head of the
			// log: say so in the cursor, so that no remove dropped from
			// its scope later, at a seq below the head, resets it: it
			// had nothing left to read there.
			c := want
			c.Seq = head
			resp.Cursor = c.Encode()
		}
		resp.Reset = reset
		resp.LastClientSeq = dev.LastClientSeq
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return resp, scope, nil
}

// pullScope walks one scope index from cur.Seq. A record is sent only
// from its latest entry in the scope (indexPut): its older entries are
// passed over, so from a cursor to the head each record appears once,
// with its current state, across all pages. An entry passed over always
// has a newer one after it, which this page or a later one reads.
//
// In a pull from nothing (cur.Snapshot set: a first pull, a reset) a
// remove at or below cur.Snapshot, the head when the pull began, is
// skipped: the device had nothing then, and every put it was sent since
// came from its record's latest entry at that moment, so older than such
// a remove, which would have superseded it. A remove committed after the
// pull began is above cur.Snapshot and is sent: the device may have been
// sent the record on an earlier page.
//
// With maxBytes above 0 the page ends once its changes' MessagePack
// encodings add up to maxBytes: the change that reaches it is the last, so
// a page holds at least one change when any is due.
//
// A put of a warning in have, at the version and state hash it gives, is
// left out and named in Kept (kept): it takes its place in the page's
// limit, as the change it stands for, and none of its byte budget.
func (s *Store) pullScope(tx *bolt.Tx, scope string, cur syncproto.Cursor, size pageSize, summary bool, have map[string]syncproto.Have) (*syncproto.PullResponse, error) {
	resp := &syncproto.PullResponse{Changes: []syncproto.Change{}}
	idx := tx.Bucket(schema.BucketIdx).Bucket([]byte(scope))
	if idx == nil {
		resp.Cursor = cur.Encode()
		return resp, nil
	}
	latest, name := latestOf(tx), []byte(scope)
	limit, maxBytes, used := size.limit, size.maxBytes, 0
	c := idx.Cursor()
	k, v := c.Seek(schema.U64(cur.Seq + 1))
	for ; k != nil; k, v = c.Next() {
		seq := schema.Uint64(k)
		snapshot := seq <= cur.Snapshot
		kind, rec, ok := schema.ParseIndexValue(v)
		if !ok || superseded(latest, rec, name, seq) || (snapshot && kind == idxRemove) {
			cur.Seq = seq
			continue
		}
		if len(resp.Changes)+len(resp.Kept) == limit || (maxBytes > 0 && used >= maxBytes) {
			break
		}
		ch, err := s.change(tx, scope, rec[0], string(rec[1:]), seq)
		if err != nil {
			return nil, err
		}
		if w, ok := ch.Data.(*syncproto.Warning); ok && summary {
			ch.Data = w.Summarize()
		}
		cur.Seq = seq
		if snapshot && ch.Kind == syncproto.ChangeRemove {
			continue
		}
		if h, ok := have[ch.ID]; ok {
			held, err := kept(ch, h)
			if err != nil {
				return nil, err
			}
			if held {
				resp.Kept = append(resp.Kept, ch.ID)
				continue
			}
		}
		if maxBytes > 0 {
			n, err := syncproto.MsgpackSize(&ch)
			if err != nil {
				return nil, err
			}
			used += n
		}
		resp.Changes = append(resp.Changes, ch)
	}
	if k != nil {
		// Entries, not records: passed-over ones count too, so this is
		// an upper bound, as a progress bar's "about" allows.
		resp.More = true
		for n := 0; k != nil && n < remainingCap; k, _ = c.Next() {
			n++
			resp.Remaining = n
		}
	}
	resp.Cursor = cur.Encode()
	return resp, nil
}

// pageSize bounds a page: its changes (limit) and, above 0, their bytes.
type pageSize struct {
	limit, maxBytes int
}

// haveByID indexes a pull's have by warning id; nil when it is empty.
func haveByID(have []syncproto.Have) map[string]syncproto.Have {
	if len(have) == 0 {
		return nil
	}
	m := make(map[string]syncproto.Have, len(have))
	for _, h := range have {
		m[h.ID] = h
	}
	return m
}

// kept reports whether ch, a change a page is about to carry, is the
// state the device holds as h says: a put of a warning at h's version
// whose state, exactly as the page would carry it, hashes to h's hash.
func kept(ch syncproto.Change, h syncproto.Have) (bool, error) {
	w, ok := ch.Data.(*syncproto.Warning)
	if ch.Kind != syncproto.ChangePut || !ok || w.Summary || ch.Version != h.Version {
		return false, nil
	}
	hash, err := syncproto.StateHash(w)
	if err != nil {
		return false, err
	}
	return hash == h.Hash, nil
}

// change builds the change for one record as it is now. A put is sent only
// while the record still belongs to the scope: an entry whose record has
// since moved away becomes a remove, so no state leaks out of scope.
func (s *Store) change(tx *bolt.Tx, scope string, entity byte, id string, seq uint64) (syncproto.Change, error) {
	switch entity {
	case entWarning:
		w, err := s.loadWarning(tx, id)
		if err != nil {
			return syncproto.Change{}, err
		}
		if w == nil || !inWarningScope(w, scope) {
			return syncproto.Change{Kind: syncproto.ChangeRemove, Entity: syncproto.EntityWarning, ID: id}, nil
		}
		if missing := missingPhotos(tx, w); len(missing) > 0 {
			// The cached state is shared: annotate a copy.
			c := *w
			c.MissingPhotos = missing
			w = &c
		}
		return syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityWarning, ID: id, Version: w.Version, Data: w}, nil
	case entUnit:
		u, err := loadUnit(tx, id)
		if err != nil {
			return syncproto.Change{}, err
		}
		if u == nil {
			return syncproto.Change{Kind: syncproto.ChangeRemove, Entity: syncproto.EntityUnit, ID: id}, nil
		}
		// Units carry no version of their own: the index entry's seq is the
		// log entry of their last change.
		return syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityUnit, ID: id, Version: seq, Data: u}, nil
	case entUser:
		u, err := loadUser(tx, id)
		if err != nil {
			return syncproto.Change{}, err
		}
		if u == nil || u.Role != syncproto.RoleVillage || !syncproto.InScope(strings.TrimPrefix(scope, "unit/"), u.Unit) {
			return syncproto.Change{Kind: syncproto.ChangeRemove, Entity: syncproto.EntityUser, ID: id}, nil
		}
		d := u.Directory()
		return syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityUser, ID: id, Version: u.Version, Data: &d}, nil
	}
	return syncproto.Change{}, nil
}

// missingPhotos lists the photos w's attempts name that have not arrived.
func missingPhotos(tx *bolt.Tx, w *syncproto.Warning) []string {
	var missing []string
	blobs := tx.Bucket(schema.BucketBlobs)
	for _, a := range w.Attempts {
		for _, p := range a.Photos {
			if blobs.Get([]byte(p)) == nil {
				missing = append(missing, p)
			}
		}
	}
	return missing
}

// inWarningScope reports whether the bucket scope holds w, by the rule of
// syncproto.CanRead: a unit's bucket its subtree's warnings, a village
// user's those the user holds.
func inWarningScope(w *syncproto.Warning, scope string) bool {
	if unit, ok := strings.CutPrefix(scope, "unit/"); ok {
		return syncproto.InScope(unit, w.Unit)
	}
	user, _ := strings.CutPrefix(scope, "user/")
	return w.HeldBy(user)
}
