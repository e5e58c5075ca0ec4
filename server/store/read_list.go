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

// Lists are served from ordered indexes, per unit and per sort order: key =
// unit, 0, sort tag, big-endian Unix seconds, warning id (seconds, not
// nanoseconds, so deadlines up to 9999 order; the id as its 16 bytes from
// schema 15 on, schema.AppendWarningID). A warning is in the index
// of its township when it lies in a village or at a township, and of its
// own unit when it lies above (listUnits, schema 15 on): a village's list
// is its township's, less the other villages' warnings; a county's or the
// city's list merges its own index with its townships' (listSources),
// which between them hold each warning of its subtree once. Indexes at
// every level of the chain made a new warning write sixteen keys, most
// into the busiest pages of the file, for the few lists read above a
// township; a village's own index, four more, for lists a township's
// serves at the cost of passing over its other villages' warnings.
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
	return schema.AppendWarningID(k, id)
}

// listKeyText is a list key of schema 14 and older: the id as its text.
// The upgrades up to schema 15 write and delete keys of this form.
func listKeyText(unit string, tag byte, t time.Time, id string) []byte {
	k := make([]byte, 0, len(unit)+2+8+len(id))
	k = append(append(k, unit...), 0, tag)
	k = binary.BigEndian.AppendUint64(k, uint64(t.Unix()))
	return append(k, id...)
}

func sortTime(tag byte, w *syncproto.Warning) time.Time {
	switch tag {
	case 'd', tagUnfinished:
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

// listUnits are the units whose list indexes hold a warning of unit: its
// township's when it lies in a village, its own otherwise.
func listUnits(unit string) []string {
	if syncproto.UnitLevel(unit) == syncproto.RoleVillage {
		return []string{syncproto.ParentCode(unit)}
	}
	return []string{unit}
}

// updateList keeps the list indexes in step with a change.
func updateList(tx *bolt.Tx, before, after *syncproto.Warning) error {
	idx := tx.Bucket(schema.BucketList)
	if before == nil || before.Unit != after.Unit {
		for _, tag := range sortTags {
			if before != nil {
				for _, u := range listUnits(before.Unit) {
					if err := idx.Delete(listKey(u, tag, sortTime(tag, before), before.ID)); err != nil {
						return err
					}
				}
			}
			for _, u := range listUnits(after.Unit) {
				if err := idx.Put(listKey(u, tag, sortTime(tag, after), after.ID), nil); err != nil {
					return err
				}
			}
		}
	}
	return updateUnfinished(idx, before, after)
}

// updateUnfinished keeps a warning in the unfinished index of its list
// units while it is not closed.
func updateUnfinished(idx *bolt.Bucket, before, after *syncproto.Warning) error {
	moved := before == nil || before.Unit != after.Unit || !before.Deadline.Equal(after.Deadline)
	if unfinished(before) && (moved || !unfinished(after)) {
		for _, u := range listUnits(before.Unit) {
			if err := idx.Delete(listKey(u, tagUnfinished, before.Deadline, before.ID)); err != nil {
				return err
			}
		}
	}
	if unfinished(after) && (moved || !unfinished(before)) {
		for _, u := range listUnits(after.Unit) {
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
	// A cursor is the last key examined, under q.Unit's prefix whichever
	// source it came from: the form lists had when every unit kept its own.
	prefix := append([]byte(q.Unit), 0, tag)
	var after []byte
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !bytes.HasPrefix(b, prefix) || len(b) < len(prefix)+8 {
			return nil, syncproto.InvalidField("cursor", "the cursor is not one of this list's; start from an empty cursor")
		}
		// A cursor of schema 14 or older names the warning by its text.
		after = schema.AppendWarningID(slices.Clone(b[len(prefix):len(prefix)+8]), string(b[len(prefix)+8:]))
	}
	desc := tag != 'd' && tag != tagUnfinished
	resp := &syncproto.WarningList{Items: []syncproto.WarningItem{}}
	text := []byte(q.Text)
	// A village's list is read from its township's index: only is the
	// unit its warnings must lie in.
	var only []byte
	if syncproto.UnitLevel(q.Unit) == syncproto.RoleVillage {
		only = []byte(q.Unit)
	}
	var last []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		list := tx.Bucket(schema.BucketList)
		states := tx.Bucket(schema.BucketWarnings)
		walk := newListWalk(list, listSources(list, q.Unit), tag, after, desc, q)
		for seen := 0; ; seen++ {
			k := walk.next()
			if k == nil {
				break
			}
			if !desc && !q.To.IsZero() && tag == 'r' && schema.Uint64(k[:8]) >= uint64(q.To.Unix()) {
				break
			}
			if desc && tag == 'r' && !q.From.IsZero() && schema.Uint64(k[:8]) < uint64(q.From.Unix()) {
				break
			}
			if len(resp.Items) == q.Limit || seen == listBudget {
				resp.More = true
				break
			}
			last = append(last[:0], k...) // keys live only as long as the transaction
			it, err := listItem(states, schema.WarningIDText(k[8:]), text, only)
			if err != nil {
				return err
			}
			if it == nil || only != nil && it.Unit != q.Unit {
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
		resp.Cursor = base64.RawURLEncoding.EncodeToString(append(prefix, last...))
	}
	return resp, nil
}

// listSources are the units whose indexes hold a list of unit's subtree
// between them, each warning once (listUnits): a village's township's
// (with its other villages' warnings, which List passes over); a
// township's own; for a county or the city its own (the warnings at its
// level) and those of each unit below it that keeps one, found by seeking
// through the index: a township's (which holds its villages'), and under
// the city a county's own.
func listSources(list *bolt.Bucket, unit string) []string {
	switch syncproto.UnitLevel(unit) {
	case syncproto.RoleVillage:
		return []string{syncproto.ParentCode(unit)}
	case syncproto.RoleTownship:
		return []string{unit}
	}
	sources := []string{unit}
	c := list.Cursor()
	// A unit's own keys ("unit" 0 ...) come first among its subtree's,
	// then its children's, whose codes go on with digits.
	k, _ := c.Seek(append([]byte(unit), '0'))
	for k != nil && bytes.HasPrefix(k, []byte(unit)) {
		end := bytes.IndexByte(k, 0)
		if end < 0 {
			break
		}
		code := k[:end:end]
		switch syncproto.UnitLevel(string(code)) {
		case syncproto.RoleCounty:
			// A county's own keys, under the city: then its children.
			sources = append(sources, string(code))
			k, _ = c.Seek(append(code, '0'))
			continue
		case syncproto.RoleTownship:
			sources = append(sources, string(code))
		default:
			// A village's keys with no township's before them: none
			// are written so; skip rather than stop.
			code = code[:min(len(code), 9)]
		}
		// Past the township's subtree: its villages are in its own index.
		k, _ = c.Seek(append(code, '9'+1))
	}
	return sources
}

// listWalk yields, in a list's order, the keys of several sources' indexes
// past their unit's prefix (sort time, then id): a merge of one cursor a
// source, kept as a heap on each cursor's key.
type listWalk struct {
	heads []listHead
	desc  bool
}

type listHead struct {
	c      *bolt.Cursor
	prefix []byte
	k      []byte // the cursor's key past prefix
}

// newListWalk positions a cursor of each source's index of tag at the
// first entry to examine: past after (a key past the prefix) when given,
// or at the start of the range in the list's order.
func newListWalk(list *bolt.Bucket, sources []string, tag byte, after []byte, desc bool, q ListQuery) *listWalk {
	w := &listWalk{heads: make([]listHead, 0, len(sources)), desc: desc}
	for _, unit := range sources {
		prefix := append([]byte(unit), 0, tag)
		c := list.Cursor()
		var from []byte
		if after != nil {
			from = append(slices.Clone(prefix), after...)
		}
		if k := listStart(c, prefix, from, desc, q); k != nil && bytes.HasPrefix(k, prefix) {
			w.heads = append(w.heads, listHead{c: c, prefix: prefix, k: k[len(prefix):]})
		}
	}
	for i := len(w.heads)/2 - 1; i >= 0; i-- {
		w.down(i)
	}
	return w
}

// next returns the next key past its prefix, nil at the end. It is valid
// until the transaction ends.
func (w *listWalk) next() []byte {
	if len(w.heads) == 0 {
		return nil
	}
	h := &w.heads[0]
	k := h.k
	if nk := step(h.c, w.desc); nk != nil && bytes.HasPrefix(nk, h.prefix) {
		h.k = nk[len(h.prefix):]
	} else {
		last := len(w.heads) - 1
		w.heads[0] = w.heads[last]
		w.heads = w.heads[:last]
	}
	w.down(0)
	return k
}

// before reports whether head i comes before head j in the list's order.
func (w *listWalk) before(i, j int) bool {
	c := bytes.Compare(w.heads[i].k, w.heads[j].k)
	if w.desc {
		return c > 0
	}
	return c < 0
}

// down restores the heap below i.
func (w *listWalk) down(i int) {
	for {
		first := i
		if l := 2*i + 1; l < len(w.heads) && w.before(l, first) {
			first = l
		}
		if r := 2*i + 2; r < len(w.heads) && w.before(r, first) {
			first = r
		}
		if first == i {
			return
		}
		w.heads[i], w.heads[first] = w.heads[first], w.heads[i]
		i = first
	}
}

// listItem is what a list shows of the warning id, from its state as the
// list's snapshot holds it (not the cache, which may hold a newer state,
// of a warning moved out of the list's unit since); nil when there is
// none, or when text or unit is given and the state's bytes lack it
// (names, addresses, phones and units are stored as plain strings, in
// either form of the state (statecodec.go): such a state cannot match,
// and is not decoded).
func listItem(states *bolt.Bucket, id, text, unit []byte) (*syncproto.WarningItem, error) {
	raw := states.Get(id)
	if raw == nil || len(text) > 0 && !bytes.Contains(raw, text) || len(unit) > 0 && !bytes.Contains(raw, unit) {
		return nil, nil
	}
	var w syncproto.Warning
	if err := DecodeState(raw, &w); err != nil {
		return nil, fmt.Errorf("warning %s: %w", id, err)
	}
	return summaryOf(&w), nil
}

// listStart positions the cursor at the first entry to examine: after the
// page cursor, or at the start of the range in the list's order.
func listStart(c *bolt.Cursor, prefix, after []byte, desc bool, q ListQuery) []byte {
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
