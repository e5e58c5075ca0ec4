package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The index of open warnings names a warning by its 16 bytes (schema 16),
// and a warning indexed under its text by an older version leaves the
// index when it closes all the same.
func TestOpenIndex_KeysOfBothForms(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "o.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	open := func(id string) *syncproto.Warning {
		return &syncproto.Warning{ID: id, Unit: "411002001001", Status: syncproto.WarningDispatched, Deadline: deadline, WarnedAt: deadline.Add(-time.Hour)}
	}
	closed := func(w *syncproto.Warning) *syncproto.Warning {
		c := *w
		c.Status = syncproto.WarningClosed
		return &c
	}
	older, newer := open("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), open("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(schema.BucketOpen)
		if err != nil {
			return err
		}
		if err := b.Put(openKeyText(older), []byte("411002001001/\x00\x00\x00\x01")); err != nil {
			return err
		}
		if err := updateOpen(tx, nil, newer); err != nil {
			return err
		}
		if k := openKey(newer); len(k) != 8+16 || b.Get(k) == nil {
			t.Errorf("the new entry is not under the deadline's 8 bytes and the id's 16 (%d bytes)", len(k))
		}
		for _, w := range []*syncproto.Warning{older, newer} {
			if err := updateOpen(tx, w, closed(w)); err != nil {
				return err
			}
		}
		if n := countKeys(b); n != 0 {
			t.Errorf("%d entries are left once both warnings closed", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countKeys counts b's keys as the transaction sees them (Stats reads
// only what was committed).
func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
