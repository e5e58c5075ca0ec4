package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Lists are served from ordered indexes, one per unit of a warning's chain
// and per sort order: key = unit, 0, sort tag, big-endian Unix seconds,
// warning id (seconds, not nanoseconds, so deadlines up to 9999 order).
// They change only when a warning is created or changes unit. Other filters
// are checked against the warning's state, which holds no attempts
// (attempts.go), and a request examines at most listBudget index entries,
// so its cost is bounded whatever the filters.

// Sort orders of a list.
const (
	SortReceived = "received" // newest first
	SortDeadline = "deadline" // soonest first
	SortWarned   = "warned"   // newest first
)

var sortTags = map[string]byte{SortReceived: 'r', SortDeadline: 'd', SortWarned: 'w'}

// tagUnfinished is the deadline index of the unfinished warnings (every
// status but closed), kept beside the three full ones (schema 6). A list of
// unfinished work by deadline reads it: the list a lead opens and the
// dashboard's to-do links. Read from the full deadline index, such a list
// at a million warnings, nearly all closed long ago, would spend a
// request's whole budget on closed warnings before its first row.
const tagUnfinished = 'u'

func unfinished(w *syncproto.Warning) bool {
	return w != nil && w.Status != syncproto.WarningClosed
}

// listBudget bounds the index entries one list request examines.
var listBudget = 20_000

func listKey(unit string, tag byte, t time.Time, id string) []byte {
	k := make([]byte, 0, len(unit)+2+8+len(id))
	k = append(append(k, unit...), 0, tag)
	k = binary.BigEndian.AppendUint64(k, uint64(t.Unix()))
	return append(k, id...)
}

func sortTime(tag byte, w *syncproto.Warning) time.Time {
	switch tag {
	case 'd':
		return w.Deadline
	case 'w':
		return w.WarnedAt
	}
	return w.ReceivedAt
}

// summaryOf is what a list filters and shows: fields of the state only,
// so a list never reads attempts.
func summaryOf(w *syncproto.Warning) *syncproto.WarningItem {
	return &syncproto.WarningItem{
		ID: w.ID, ExternalID: w.ExternalID, Name: w.Name, Phone: w.Phone, Address: w.Address, Unit: w.Unit,
		FraudType: w.FraudType, Risk: w.Risk, Status: w.Status, Assignee: w.Assignee, Outcome: w.Outcome,
		Escalated: w.Escalated, OpenFlags: w.OpenFlags(), WarnedAt: w.WarnedAt, ReceivedAt: w.ReceivedAt,
		Deadline: w.Deadline, Version: w.Version,
	}
}

// updateList keeps the list indexes in step with a change.
func updateList(tx *bolt.Tx, before, after *syncproto.Warning) error {
	idx := tx.Bucket(schema.BucketList)
	if before == nil || before.Unit != after.Unit {
		for _, tag := range sortTags {
			if before != nil {
				for _, u := range syncproto.UnitChain(before.Unit) {
					if err := idx.Delete(listKey(u, tag, sortTime(tag, before), before.ID)); err != nil {
						return err
					}
				}
			}
			for _, u := range syncproto.UnitChain(after.Unit) {
				if err := idx.Put(listKey(u, tag, sortTime(tag, after), after.ID), nil); err != nil {
					return err
				}
			}
		}
	}
	return updateUnfinished(idx, before, after)
}

// updateUnfinished keeps a warning in the unfinished index of every unit of
// its chain while it is not closed.
func updateUnfinished(idx *bolt.Bucket, before, after *syncproto.Warning) error {
	moved := before == nil || before.Unit != after.Unit || !before.Deadline.Equal(after.Deadline)
	if unfinished(before) && (moved || !unfinished(after)) {
		for _, u := range syncproto.UnitChain(before.Unit) {
			if err := idx.Delete(listKey(u, tagUnfinished, before.Deadline, before.ID)); err != nil {
				return err
			}
		}
	}
	if unfinished(after) && (moved || !unfinished(before)) {
		for _, u := range syncproto.UnitChain(after.Unit) {
			if err := idx.Put(listKey(u, tagUnfinished, after.Deadline, after.ID), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// listTag is the index a list reads: the unfinished one when it asks for
// unfinished statuses only, by deadline.
func listTag(q ListQuery) (byte, bool) {
	tag, ok := sortTags[q.Sort]
	if tag == 'd' && len(q.Status) > 0 && !slices.Contains(q.Status, syncproto.WarningClosed) {
		tag = tagUnfinished
	}
	return tag, ok
}

// ListQuery filters and orders a list. Zero fields match everything.
type ListQuery struct {
	Unit      string
	Status    []string
	Risk      string
	FraudType string
	Assignee  string
	Overdue   *bool
	Flagged   *bool
	// Escalated keeps the warnings with an open escalation (true) or
	// without (false).
	Escalated *bool
	// From and To bound received_at (To exclusive).
	From, To time.Time
	// Text matches part of the name or address, or the end of the phone.
	Text   string
	Sort   string
	Limit  int
	Cursor string
	Now    time.Time
}

func (q *ListQuery) match(it *syncproto.WarningItem) bool {
	switch {
	case len(q.Status) > 0 && !slices.Contains(q.Status, it.Status),
		q.Risk != "" && it.Risk != q.Risk,
		q.FraudType != "" && it.FraudType != q.FraudType,
		q.Assignee != "" && it.Assignee != q.Assignee,
		q.Overdue != nil && *q.Overdue != it.Overdue,
		q.Flagged != nil && *q.Flagged != (it.OpenFlags > 0),
		q.Escalated != nil && *q.Escalated != it.Escalated,
		!q.From.IsZero() && it.ReceivedAt.Before(q.From),
		!q.To.IsZero() && !it.ReceivedAt.Before(q.To):
		return false
	}
	if q.Text != "" && !strings.Contains(it.Name, q.Text) && !strings.Contains(it.Address, q.Text) && !strings.HasSuffix(it.Phone, q.Text) {
		return false
	}
	return true
}

// List returns a page of the warnings of q.Unit's subtree that match q.
func (s *Store) List(q ListQuery) (*syncproto.WarningList, error) {
	tag, ok := listTag(q)
	if !ok {
		return nil, syncproto.InvalidField("sort", "sort must be received, deadline or warned")
	}
	prefix := append([]byte(q.Unit), 0, tag)
	var after []byte
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !bytes.HasPrefix(b, prefix) {
			return nil, syncproto.InvalidField("cursor", "the cursor is not one of this list's; start from an empty cursor")
		}
		after = b
	}
	desc := tag != 'd' && tag != tagUnfinished
	resp := &syncproto.WarningList{Items: []syncproto.WarningItem{}}
	text := []byte(q.Text)
	var last []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.BucketList).Cursor()
		states := tx.Bucket(schema.BucketWarnings)
		k := s.listStart(c, prefix, after, desc, q)
		for seen := 0; k != nil && bytes.HasPrefix(k, prefix); k = step(c, desc) {
			if !desc && !q.To.IsZero() && tag == 'r' && schema.Uint64(k[len(prefix):len(prefix)+8]) >= uint64(q.To.Unix()) {
				break
			}
			if desc && tag == 'r' && !q.From.IsZero() && schema.Uint64(k[len(prefix):len(prefix)+8]) < uint64(q.From.Unix()) {
				break
			}
			if len(resp.Items) == q.Limit || seen == listBudget {
				resp.More = true
				break
			}
			seen++
			last = append(last[:0], k...) // keys live only as long as the transaction
			it, err := listItem(states, k[len(prefix)+8:], text)
			if err != nil {
				return err
			}
			if it == nil {
				continue
			}
			it.Overdue = syncproto.IsOverdue(it.Status, it.Deadline, q.Now)
			if q.match(it) {
				resp.Items = append(resp.Items, *it)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if resp.More {
		resp.Cursor = base64.RawURLEncoding.EncodeToString(last)
	}
	return resp, nil
}

// listItem is what a list shows of the warning id, from its state as the
// list's snapshot holds it (not the cache, which may hold a newer state,
// of a warning moved out of the list's unit since); nil when there is
// none, or when text is given and the state's bytes lack it (names,
// addresses and phones are stored as plain strings: such a state cannot
// match, and is not decoded).
func listItem(states *bolt.Bucket, id, text []byte) (*syncproto.WarningItem, error) {
	raw := states.Get(id)
	if raw == nil || len(text) > 0 && !bytes.Contains(raw, text) {
		return nil, nil
	}
	var w syncproto.Warning
	if err := decode(raw, &w); err != nil {
		return nil, fmt.Errorf("warning %s: %w", id, err)
	}
	return summaryOf(&w), nil
}

// listStart positions the cursor at the first entry to examine: after the
// page cursor, or at the start of the range in the list's order.
func (s *Store) listStart(c *bolt.Cursor, prefix, after []byte, desc bool, q ListQuery) []byte {
	if after != nil {
		k, _ := c.Seek(after)
		switch {
		case k != nil && bytes.Equal(k, after):
			return step(c, desc)
		case !desc:
			return k
		case k == nil:
			k, _ = c.Last()
			return k
		}
		k, _ = c.Prev()
		return k
	}
	if desc {
		end := append(slices.Clone(prefix), 0xff)
		if !q.To.IsZero() && prefix[len(prefix)-1] == 'r' {
			end = binary.BigEndian.AppendUint64(slices.Clone(prefix), uint64(q.To.Unix()))
		}
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
			return k
		}
		k, _ = c.Prev()
		return k
	}
	start := prefix
	if !q.From.IsZero() && prefix[len(prefix)-1] == 'r' {
		start = binary.BigEndian.AppendUint64(slices.Clone(prefix), uint64(q.From.Unix()))
	}
	k, _ := c.Seek(start)
	return k
}

func step(c *bolt.Cursor, desc bool) []byte {
	var k []byte
	if desc {
		k, _ = c.Prev()
	} else {
		k, _ = c.Next()
	}
	return k
}

// AuditList records that actor read the personal data of a list's items.
func (s *Store) AuditList(ctx context.Context, actor syncproto.Actor, items []syncproto.WarningItem) error {
	if len(items) == 0 {
		return nil
	}
	read := make([]auditItem, len(items))
	for i, it := range items {
		read[i] = auditItem{ID: it.ID, Unit: it.Unit}
	}
	_, err := s.write(ctx, &auditListCmd{Actor: principalOf(actor), Items: read})
	return err
}

// auditItem is a warning of a list read: its id and unit, nothing of the
// personal data that was read.
type auditItem struct {
	ID   string `json:"id"`
	Unit string `json:"unit"`
}

// auditListCmd records that Actor read a list's items at Now.
type auditListCmd struct {
	Actor principal   `json:"actor"`
	Items []auditItem `json:"items"`
	Now   time.Time   `json:"now"`
}

func (*auditListCmd) kind() cmdKind { return cmdAuditList }

func (c *auditListCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *auditListCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	username := ""
	u, err := loadUser(tx, c.Actor.UserID)
	if err != nil {
		return nil, err
	}
	if u != nil {
		username = u.Username
	}
	b := tx.Bucket(schema.BucketAudit)
	b.FillPercent = 1.0
	for _, it := range c.Items {
		seq, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		e := AuditEntry{Seq: seq, At: c.Now, UserID: c.Actor.UserID, Username: username, DeviceID: c.Actor.DeviceID, WarningID: it.ID, Unit: it.Unit, What: "list"}
		if err := put(b, schema.U64(seq), &e); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
