package store

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// HistoryEntry is one thing that happened to a warning, from the log.
type HistoryEntry struct {
	Seq        uint64            `json:"seq"`
	Type       string            `json:"type"`
	ActorID    string            `json:"actor_id"`
	ActorName  string            `json:"actor_name,omitempty"`
	DeviceID   string            `json:"device_id,omitempty"`
	At         *time.Time        `json:"at,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	Op         *syncproto.Op     `json:"op,omitempty"`
	Result     *syncproto.Result `json:"result,omitempty"`
}

// WarningDetail is a warning with its whole history.
type WarningDetail struct {
	Warning *syncproto.Warning `json:"warning"`
	History []HistoryEntry     `json:"history"`
}

// WarningDetail returns a warning and its history for a reader whose scope
// holds it, and records the read in the audit log (its personal data is in
// the answer). Anyone else gets not_found.
func (s *Store) WarningDetail(ctx context.Context, actor syncproto.Actor, id string) (*WarningDetail, error) {
	var d *WarningDetail
	username := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		w, err := s.loadWarning(tx, id)
		if err != nil {
			return err
		}
		if w == nil || !syncproto.CanRead(actor, w) {
			return syncproto.Errorf(syncproto.CodeNotFound, "no warning %s in your scope", id)
		}
		u, err := loadUser(tx, actor.UserID)
		if err != nil {
			return err
		}
		if u != nil {
			username = u.Username
		}
		d = &WarningDetail{Warning: w.Clone(), History: []HistoryEntry{}}
		d.Warning.MissingPhotos = missingPhotos(tx, w)
		names := map[string]string{}
		seqs, err := historySeqs(tx, id)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			var e LogEntry
			found, err := getLogEntry(tx.Bucket(schema.BucketLog), schema.U64(seq), &e)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			h := HistoryEntry{Seq: e.Seq, Type: e.Type, ActorID: e.ActorID, DeviceID: e.DeviceID, ReceivedAt: e.ReceivedAt, Op: e.Op, Result: e.Result}
			if e.Op != nil {
				at := e.Op.At
				h.At = &at
			}
			name, ok := names[e.ActorID]
			if !ok {
				u, err := loadUser(tx, e.ActorID)
				if err != nil {
					return err
				}
				if u != nil {
					name = u.Name
				}
				names[e.ActorID] = name
			}
			h.ActorName = name
			d.History = append(d.History, h)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	audit := AuditEntry{UserID: actor.UserID, Username: username, DeviceID: actor.DeviceID,
		WarningID: id, Unit: d.Warning.Unit, What: "warning"}
	if _, err := s.write(ctx, &auditWarningCmd{Entry: audit}); err != nil {
		return nil, err
	}
	return d, nil
}

// auditWarningCmd records a read of a warning's personal data; the entry
// gets the audit's next seq.
type auditWarningCmd struct {
	Entry AuditEntry `json:"entry"`
}

func (*auditWarningCmd) kind() cmdKind { return cmdAuditWarning }

func (c *auditWarningCmd) stamp(now time.Time) { c.Entry.At = now.UTC() }

func (c *auditWarningCmd) apply(_ *Store, tx *bolt.Tx) (any, error) {
	b := tx.Bucket(schema.BucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return nil, err
	}
	e := c.Entry
	e.Seq = seq
	return nil, put(b, schema.U64(seq), &e)
}

// Audit lists reads of personal data of warnings in unit's subtree, after
// seq `after`, at most limit, oldest first.
func (s *Store) Audit(unit string, after uint64, limit int) ([]AuditEntry, error) {
	out := []AuditEntry{}
	if after == ^uint64(0) {
		return out, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.BucketAudit).Cursor()
		for k, v := c.Seek(schema.U64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e AuditEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			if syncproto.InScope(unit, e.Unit) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
