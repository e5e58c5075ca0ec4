package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FeedRow is one row of a feed import, numbered from 1. Err is set when the
// row was refused before reaching the store (a CSV row that did not parse),
// and Problems then says every problem of it (syncproto.FeedInvalid).
type FeedRow struct {
	Num      int
	Warning  syncproto.FeedWarning
	Err      *syncproto.Error
	Problems []syncproto.FeedProblem
}

// importChunk is how many feed rows share a transaction: rows are
// independent and the import is idempotent, and a bbolt transaction that
// inserts many keys in the middle of the list indexes grows slower than
// linearly.
const importChunk = 1000

// ImportFeed creates a warning for each new row, idempotent on external_id.
// A bad row is reported by number and never stops the others. Each warning
// is `new` at the importer's unit, `dispatched` deeper, or assigned at once
// when its village has exactly one active cadre. Rows commit in chunks; if
// the import fails midway, importing the same feed again completes it.
func (s *Store) ImportFeed(ctx context.Context, actor syncproto.Actor, rows []FeedRow) (*syncproto.FeedResponse, error) {
	resp := &syncproto.FeedResponse{Created: []syncproto.FeedCreated{}, Duplicates: []string{}, Invalid: []syncproto.FeedInvalid{}}
	for start := 0; start < len(rows); start += importChunk {
		part, err := s.importChunk(ctx, actor, rows[start:min(start+importChunk, len(rows))])
		if err != nil {
			return nil, err
		}
		resp.Created = append(resp.Created, part.Created...)
		resp.Duplicates = append(resp.Duplicates, part.Duplicates...)
		resp.Invalid = append(resp.Invalid, part.Invalid...)
	}
	return resp, nil
}

func (s *Store) importChunk(ctx context.Context, actor syncproto.Actor, rows []FeedRow) (*syncproto.FeedResponse, error) {
	ids := make([]string, len(rows))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	return submit[*syncproto.FeedResponse](ctx, s, &importCmd{Actor: principalOf(actor), Rows: rows, IDs: ids, Deadlines: s.deadlines})
}

// importCmd is a chunk of a feed import, with the id each row's warning
// gets if it is created.
type importCmd struct {
	Actor     principal                `json:"actor"`
	Rows      []FeedRow                `json:"rows"`
	IDs       []string                 `json:"ids"`
	Now       time.Time                `json:"now"`
	Deadlines syncproto.DeadlinePolicy `json:"deadlines"`
}

func (*importCmd) kind() cmdKind { return cmdImportFeed }

// weight: a new warning's state, log entry, indexes and list entries come
// to about 2 KB (docs/BENCHMARKS.md, bytes by bucket).
func (c *importCmd) weight() int { return 2048 * len(c.Rows) }

func (c *importCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *importCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	resp := &syncproto.FeedResponse{}
	actor, rows, ids, now := c.Actor.actor(), c.Rows, c.IDs, c.Now
	ext := tx.Bucket(schema.BucketExternal)
	invalid := func(row int, e *syncproto.Error) {
		resp.Invalid = append(resp.Invalid, syncproto.FeedInvalid{Row: row, Code: e.Code, Message: e.Message})
	}
	for i := range rows {
		r := &rows[i]
		f := &r.Warning
		if r.Err != nil {
			invalid(r.Num, r.Err)
			resp.Invalid[len(resp.Invalid)-1].Problems = r.Problems
			continue
		}
		if e := f.Validate(now); e != nil {
			invalid(r.Num, e)
			continue
		}
		if ext.Get([]byte(f.ExternalID)) != nil {
			resp.Duplicates = append(resp.Duplicates, f.ExternalID)
			continue
		}
		if !syncproto.InScope(actor.Unit, f.Unit) {
			invalid(r.Num, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", f.Unit))
			continue
		}
		unit, err := loadUnit(tx, f.Unit)
		if err != nil {
			return nil, err
		}
		if unit == nil {
			invalid(r.Num, syncproto.InvalidField("unit", "unit %s does not exist", f.Unit))
			continue
		}
		seq, err := appendLogSeq(tx)
		if err != nil {
			return nil, err
		}
		dir := &txDir{tx: tx}
		env := syncproto.Env{Actor: actor, Version: seq, Now: now, Dir: dir}
		w := syncproto.Create(ids[i], f, env, c.Deadlines)
		if dir.err != nil {
			return nil, dir.err
		}
		if err := putLog(tx, &LogEntry{Seq: seq, Type: syncproto.OpCreated, EntityID: w.ID, ActorID: actor.UserID, DeviceID: actor.DeviceID, ReceivedAt: now, Feed: f}); err != nil {
			return nil, err
		}
		if err := addHistory(tx, w.ID, seq); err != nil {
			return nil, err
		}
		if err := s.saveWarning(tx, seq, nil, w); err != nil {
			return nil, err
		}
		if err := ext.Put([]byte(f.ExternalID), schema.AppendWarningID(nil, w.ID)); err != nil {
			return nil, err
		}
		resp.Created = append(resp.Created, syncproto.FeedCreated{ExternalID: f.ExternalID, ID: w.ID})
	}
	return resp, nil
}

// Warning returns a warning's current state, or nil.
func (s *Store) Warning(id string) (*syncproto.Warning, error) {
	var w *syncproto.Warning
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		w, err = s.loadWarning(tx, id)
		return err
	})
	if w != nil {
		w = w.Clone()
	}
	return w, err
}
