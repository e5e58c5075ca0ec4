package store

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
)

// A warning's history is its history record (schema 16 on) and the
// entries of its own key each written before: historySeqs reads both, in
// order, and addHistory adds to the record only, once a seq.
func TestHistory_RecordBesideOlderEntries(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	const other = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(schema.BucketWarnings)
		if err != nil {
			return err
		}
		// What a schema-15 store holds: an entry a key.
		for _, seq := range []uint64{5, 9} {
			if err := b.Put(schema.WarningHistoryKey(id, seq), nil); err != nil {
				return err
			}
		}
		for _, seq := range []uint64{12, 300, 300, 70_000} {
			if err := addHistory(tx, id, seq); err != nil {
				return err
			}
		}
		if err := addHistory(tx, other, 13); err != nil {
			return err
		}
		if err := addHistory(tx, id, 299); err == nil {
			t.Error("a seq below the record's last was taken")
		}
		got, err := historySeqs(tx, id)
		if err != nil {
			return err
		}
		if want := []uint64{5, 9, 12, 300, 70_000}; !slices.Equal(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
		if got, _ := historySeqs(tx, other); !slices.Equal(got, []uint64{13}) {
			t.Errorf("the other warning's history %v, want [13]", got)
		}
		// 12, then 288 and 69,700 more: one, two and three bytes.
		if v := b.Get(schema.WarningHistoryRecordKey(id)); len(v) != 1+2+3 {
			t.Errorf("the record takes %d bytes for three seqs, want 6", len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
