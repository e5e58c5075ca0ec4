package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Retention: a closed warning leaves its village cadre's phone some days
// after it closed (the cadre's pull gets a remove), and its personal data
// is erased on the server some time later, down to the log; what the
// statistics and the feedback need stays.

// Log entry types of the retention sweep.
const (
	EntryArchived = "warning.archived"
	EntryRedacted = "warning.redacted"
)

// Default retention periods, counted from a warning's closing.
const (
	DefaultCadreRetention = 30 * 24 * time.Hour
	DefaultRedactAfter    = 365 * 24 * time.Hour
)

// sweepBatch bounds one sweep transaction.
const sweepBatch = 500

func closedKey(w *syncproto.Warning) []byte {
	k := make([]byte, 0, 8+len(w.ID))
	k = binary.BigEndian.AppendUint64(k, uint64(w.ClosedAt.UnixNano()))
	return append(k, w.ID...)
}

// retentionIndex is the bucket a warning waits in: to be archived while it
// is closed and not archived, to be redacted while archived and not
// redacted, neither otherwise.
func retentionIndex(w *syncproto.Warning) []byte {
	switch {
	case w == nil || w.Status != syncproto.WarningClosed || w.ClosedAt == nil:
		return nil
	case w.ArchivedAt == nil:
		return schema.BucketToArchive
	case w.RedactedAt == nil:
		return schema.BucketToRedact
	}
	return nil
}

// updateRetention keeps the two retention indexes in step with a change.
func updateRetention(tx *bolt.Tx, before, after *syncproto.Warning) error {
	if b := retentionIndex(after); b != nil && bytes.Equal(b, retentionIndex(before)) && before.ClosedAt.Equal(*after.ClosedAt) {
		return nil // the same entry in the same index: nothing to write
	}
	if b := retentionIndex(before); b != nil {
		if err := tx.Bucket(b).Delete(closedKey(before)); err != nil {
			return err
		}
	}
	if b := retentionIndex(after); b != nil {
		return tx.Bucket(b).Put(closedKey(after), nil)
	}
	return nil
}

// Sweep archives the warnings closed longer than cadreRetention ago and
// redacts those closed longer than redactAfter ago, at most sweepBatch of
// each per transaction, until none is due. It returns how many it archived
// and redacted.
func (s *Store) Sweep(ctx context.Context, cadreRetention, redactAfter time.Duration) (archived, redacted int, err error) {
	for {
		r, err := submit[sweepResult](ctx, s, &sweepCmd{CadreRetention: cadreRetention, RedactAfter: redactAfter})
		if err != nil {
			return archived, redacted, fmt.Errorf("retention sweep: %w", err)
		}
		archived, redacted = archived+r.Archived, redacted+r.Redacted
		if r.Archived < sweepBatch && r.Redacted < sweepBatch {
			return archived, redacted, nil
		}
	}
}

// sweepCmd is one step of a retention sweep at Now: at most sweepBatch
// warnings archived and as many redacted, those the state holds as due.
type sweepCmd struct {
	Now            time.Time     `json:"now"`
	CadreRetention time.Duration `json:"cadre_retention"`
	RedactAfter    time.Duration `json:"redact_after"`
}

// sweepResult is how many warnings one step archived and redacted.
type sweepResult struct{ Archived, Redacted int }

func (*sweepCmd) kind() cmdKind { return cmdSweep }

func (c *sweepCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *sweepCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	var r sweepResult
	var err error
	if r.Archived, err = s.sweep(tx, schema.BucketToArchive, c.Now.Add(-c.CadreRetention), c.Now, archive); err != nil {
		return nil, err
	}
	if r.Redacted, err = s.sweep(tx, schema.BucketToRedact, c.Now.Add(-c.RedactAfter), c.Now, s.redact); err != nil {
		return nil, err
	}
	return r, nil
}

// sweep applies change to each warning of an index closed before cutoff.
func (s *Store) sweep(tx *bolt.Tx, index []byte, cutoff, now time.Time,
	change func(tx *bolt.Tx, w *syncproto.Warning, now time.Time) (string, error)) (int, error) {
	var due [][]byte
	c := tx.Bucket(index).Cursor()
	end := binary.BigEndian.AppendUint64(nil, uint64(cutoff.UnixNano()))
	for k, _ := c.First(); k != nil && string(k[:8]) < string(end) && len(due) < sweepBatch; k, _ = c.Next() {
		due = append(due, append([]byte(nil), k...))
	}
	for _, k := range due {
		w, err := s.loadWarning(tx, string(k[8:]))
		if err != nil {
			return 0, err
		}
		if w == nil {
			if err := tx.Bucket(index).Delete(k); err != nil {
				return 0, err
			}
			continue
		}
		after := w.Clone()
		typ, err := change(tx, after, now)
		if err != nil {
			return 0, err
		}
		seq, err := appendLog(tx, &LogEntry{Type: typ, EntityID: w.ID, ActorID: "system", ReceivedAt: now})
		if err != nil {
			return 0, err
		}
		after.Version = seq
		if err := addHistory(tx, w.ID, seq); err != nil {
			return 0, err
		}
		if err := s.saveWarning(tx, seq, w, after); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// archive takes a closed warning off its cadre's phone: warningScopes
// leaves out the assignee of an archived warning, so the save writes a
// remove into the cadre's bucket.
func archive(_ *bolt.Tx, w *syncproto.Warning, now time.Time) (string, error) {
	w.ArchivedAt = &now
	return EntryArchived, nil
}

// redact erases a warning's personal data from its state and from every log
// entry of its history.
func (s *Store) redact(tx *bolt.Tx, w *syncproto.Warning, now time.Time) (string, error) {
	w.Redact()
	w.RedactedAt = &now
	logs := tx.Bucket(schema.BucketLog)
	seqs, err := historySeqs(tx, w.ID)
	if err != nil {
		return "", err
	}
	for _, n := range seqs {
		seq := schema.U64(n)
		var e LogEntry
		found, err := getLogEntry(logs, seq, &e)
		if err != nil {
			return "", err
		}
		if !found {
			continue
		}
		if e.Feed != nil {
			e.Feed.Name, e.Feed.Phone, e.Feed.IDTail, e.Feed.Address = "", "", "", ""
		}
		if e.Op != nil {
			e.Op.Body.Notes, e.Op.Body.Location = "", nil
		}
		if err := putLogEntry(logs, &e); err != nil {
			return "", err
		}
	}
	return EntryRedacted, nil
}
