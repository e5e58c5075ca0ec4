package store_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// How the tests that read a store's file directly find a warning's
// records, written out here rather than taken from the store, so that a
// change of layout shows as a failing test. From schema 8 a warning's
// attempts, history and latest entries lie beside its state in bucket
// warnings, under its id, a 0x00 byte and a tag ('a', 'h', 'l'); before
// that in buckets attempts, history and latest.

// rawIndexValue reads an index entry's value: its kind, then its record's
// entity byte and id; from schema 11 a warning is 'W' and its id's 16
// bytes, read back here as the id's text with entity 'w', the rec the
// latest values are keyed by.
func rawIndexValue(tb testing.TB, v []byte) (kind byte, rec string) {
	tb.Helper()
	if len(v) < 2 {
		tb.Fatalf("index value %x is too short", v)
	}
	if v[1] != 'W' {
		return v[0], string(v[1:])
	}
	id, err := uuid.FromBytes(v[2:])
	if err != nil {
		tb.Fatalf("index value %x: %v", v, err)
	}
	return v[0], "w" + id.String()
}

// rawSep ends the id in the key of a warning's sub-record.
const rawSep = 0x00

// rawStates calls fn with each warning state of bucket warnings, in id
// order, passing over the sub-records.
func rawStates(tx *bolt.Tx, fn func(id, v []byte) error) error {
	return tx.Bucket([]byte("warnings")).ForEach(func(k, v []byte) error {
		if bytes.IndexByte(k, rawSep) >= 0 {
			return nil
		}
		return fn(k, v)
	})
}

// rawState decodes a warning's state as store.DecodeState does, in either
// form (compact from schema 14 on).
func rawState(tb testing.TB, v []byte, w *syncproto.Warning) {
	tb.Helper()
	if err := store.DecodeState(v, w); err != nil {
		tb.Fatal(err)
	}
}

// rawSubRecords calls fn with each sub-record of bucket warnings with tag:
// the warning's id, what follows the tag, the value.
func rawSubRecords(tx *bolt.Tx, tag byte, fn func(id, rest, v []byte) error) error {
	return tx.Bucket([]byte("warnings")).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, rawSep)
		if i < 0 || i+1 >= len(k) || k[i+1] != tag {
			return nil
		}
		return fn(k[:i], k[i+2:], v)
	})
}

// rawLatestPlace is the bucket and key of rec's latest value (rec: the
// entity byte, then the id): a warning's beside its state once the file
// keeps it there, anything else's in bucket latest.
func rawLatestPlace(tx *bolt.Tx, rec []byte) (*bolt.Bucket, []byte) {
	if len(rec) > 0 && rec[0] == 'w' {
		warnings := tx.Bucket([]byte("warnings"))
		k := append(append(bytes.Clone(rec[1:]), rawSep), 'l')
		if warnings.Get(k) != nil {
			return warnings, k
		}
	}
	return tx.Bucket([]byte("latest")), rec
}

// checkEdited changes the closed store file in dir with edit, in one
// transaction, and returns what fieldsyncd check then finds in it.
func checkEdited(t *testing.T, dir string, edit func(tx *bolt.Tx) error) *storefile.CheckReport {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(edit)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	rep, err := storefile.Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
