package store

import (
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// feedbackScope names feedback cursors apart from pull cursors of the same
// unit, so one is never taken for the other.
func feedbackScope(unit string) string { return "feedback/" + unit }

// Feedback returns, after cursor, each warning of unit's subtree whose
// state changed, with its outcome for the national platform, at most limit
// items. It walks the unit's scope index, so it costs what changed.
func (s *Store) Feedback(unit, cursor string, limit int) (*syncproto.FeedbackResponse, error) {
	cur, perr := syncproto.ParseCursor(cursor)
	if perr != nil {
		return nil, perr
	}
	inc := s.Incarnation()
	want := syncproto.Cursor{Scope: syncproto.ScopeHash([]string{feedbackScope(unit)})}
	copy(want.Incarnation[:], inc[:8])
	if cursor != "" && (cur.Incarnation != want.Incarnation || cur.Scope != want.Scope) {
		return nil, syncproto.Errorf(syncproto.CodeCursorExpired, "this cursor is for another unit or another store; start again from an empty cursor")
	}
	want.Seq = cur.Seq
	resp := &syncproto.FeedbackResponse{Items: []syncproto.FeedbackItem{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(schema.BucketIdx).Bucket([]byte(UnitScope(unit)))
		if idx == nil {
			return nil
		}
		pos := map[string]int{}
		c := idx.Cursor()
		k, v := c.Seek(schema.U64(want.Seq + 1))
		for ; k != nil; k, v = c.Next() {
			kind, rec, ok := schema.ParseIndexValue(v)
			if !ok || rec[0] != entWarning || kind != idxPut {
				want.Seq = schema.Uint64(k)
				continue
			}
			id := string(rec[1:])
			i, seen := pos[id]
			if !seen && len(resp.Items) == limit {
				resp.More = true
				break
			}
			w, err := s.loadWarning(tx, id)
			if err != nil {
				return err
			}
			want.Seq = schema.Uint64(k)
			if w == nil || !syncproto.InScope(unit, w.Unit) {
				continue
			}
			// Once per page, as it is now.
			item, err := feedbackOf(tx, w)
			if err != nil {
				return err
			}
			if seen {
				resp.Items[i] = item
			} else {
				pos[id] = len(resp.Items)
				resp.Items = append(resp.Items, item)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Cursor = want.Encode()
	return resp, nil
}

func feedbackOf(tx *bolt.Tx, w *syncproto.Warning) (syncproto.FeedbackItem, error) {
	item := syncproto.FeedbackItem{
		ExternalID: w.ExternalID, ID: w.ID, Unit: w.Unit, Status: w.Status, Outcome: w.Outcome,
		Cadre: w.Assignee, WarnedAt: w.WarnedAt, FirstContactAt: w.FirstContactAt,
		ResolvedAt: w.ResolvedAt, ClosedAt: w.ClosedAt, Version: w.Version,
	}
	for _, a := range w.Attempts {
		item.Reached = item.Reached || a.Reached
		if a.Outcome == syncproto.OutcomeAlreadyDefrauded {
			// The latest report of the loss stands.
			item.LossFen = a.LossFen
		}
	}
	u, err := loadUser(tx, w.Assignee)
	if err != nil {
		return item, err
	}
	if u != nil {
		item.CadreName = u.Name
	}
	return item, nil
}
