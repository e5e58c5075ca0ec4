package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// warningRecords is what a file holds of one warning, whatever its
// layout: the state with its attempts assembled, the seqs of its history
// entries, and its latest value as stored.
type warningRecords struct {
	Warning syncproto.Warning
	History []uint64
	Latest  []byte
}

// rawSchema7Records reads every warning of a schema-7 file: states in
// warnings, attempts in attempts (id + uint32), history in history (id +
// uint64), latest values in latest ('w' + id).
func rawSchema7Records(tb testing.TB, tx *bolt.Tx) map[string]*warningRecords {
	tb.Helper()
	out := map[string]*warningRecords{}
	err := tx.Bucket([]byte("warnings")).ForEach(func(k, v []byte) error {
		r := &warningRecords{}
		rawState(tb, v, &r.Warning)
		r.Warning.Attempts = []syncproto.Attempt{}
		r.Latest = bytes.Clone(tx.Bucket([]byte("latest")).Get(append([]byte("w"), k...)))
		out[string(k)] = r
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for id, r := range out {
		c := tx.Bucket([]byte("attempts")).Cursor()
		for k, v := c.Seek([]byte(id)); k != nil && bytes.HasPrefix(k, []byte(id)); k, v = c.Next() {
			if binary.BigEndian.Uint32(k[len(id):]) != uint32(len(r.Warning.Attempts)) {
				tb.Fatalf("warning %s: attempt key %x out of order", id, k)
			}
			var a syncproto.Attempt
			rawDecode(tb, v, &a)
			r.Warning.Attempts = append(r.Warning.Attempts, a)
		}
		c = tx.Bucket([]byte("history")).Cursor()
		for k, _ := c.Seek([]byte(id)); k != nil && bytes.HasPrefix(k, []byte(id)); k, _ = c.Next() {
			r.History = append(r.History, binary.BigEndian.Uint64(k[len(id):]))
		}
	}
	return out
}

// rawSchema8Records reads every warning of a schema-8 file, its records
// beside its state (rawfile_test.go).
func rawSchema8Records(tb testing.TB, tx *bolt.Tx) map[string]*warningRecords {
	tb.Helper()
	out := map[string]*warningRecords{}
	for id, r := range rawAttempts(tb, tx) {
		out[id] = &warningRecords{Warning: *r.assembled(tb)}
	}
	err := rawSubRecords(tx, 'h', func(id, rest, _ []byte) error {
		r := out[string(id)]
		if r == nil || len(rest) != 8 {
			tb.Fatalf("history entry %x of warning %s, which the file does not hold", rest, id)
		}
		r.History = append(r.History, binary.BigEndian.Uint64(rest))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	err = rawSubRecords(tx, 'l', func(id, rest, v []byte) error {
		r := out[string(id)]
		if r == nil || len(rest) != 0 {
			tb.Fatalf("latest value %q of warning %s, which the file does not hold", rest, id)
		}
		r.Latest = bytes.Clone(v)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestMigrate_V3Colocate: the schema 8 upgrade, stopped after its first
// step and resumed, moves every warning's attempts, history entries and
// latest value beside its state and deletes buckets attempts and history;
// every warning reads back as it was, with the same history and latest
// seqs, bucket latest keeps only units' and users', and the check is
// clean.
func TestMigrate_V3Colocate(t *testing.T) {
	dir, _ := copyV3(t)
	// Up to schema 7, as the store was before this upgrade.
	stop := store.StopMigrationToAfter(8, 0)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) || rawSchema(t, dir) != 7 {
		t.Fatalf("open up to schema 7: %v, schema %d", err, rawSchema(t, dir))
	}
	var old map[string]*warningRecords
	others := map[string][]byte{}
	rawView(t, dir, func(tx *bolt.Tx) error {
		old = rawSchema7Records(t, tx)
		return tx.Bucket([]byte("latest")).ForEach(func(k, v []byte) error {
			if k[0] != 'w' {
				others[string(k)] = bytes.Clone(v)
			}
			return nil
		})
	})
	attempts, history := 0, 0
	for id, r := range old {
		attempts += len(r.Warning.Attempts)
		history += len(r.History)
		if r.Latest == nil || len(r.History) == 0 {
			t.Fatalf("warning %s has no latest value or no history before the upgrade", id)
		}
	}
	if len(old) <= 2 || attempts < 2 || len(others) == 0 {
		t.Fatalf("the fixture has %d warnings, %d attempts, %d other latest values: the test wants several", len(old), attempts, len(others))
	}

	defer store.SetMigrationChunk(2)()
	stop = store.StopMigrationToAfter(8, 1)
	_, err = store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	if got := rawSchema(t, dir); got != 7 {
		t.Fatalf("a stopped migration left schema %d", got)
	}
	rawView(t, dir, func(tx *bolt.Tx) error {
		moved := 0
		rawSubRecords(tx, 'l', func(_, _, _ []byte) error { moved++; return nil })
		if tx.Bucket([]byte("meta")).Get([]byte("migrate8_next")) == nil || moved != 2 || tx.Bucket([]byte("history")) == nil {
			t.Errorf("after one step: progress kept %v, %d warnings moved, history bucket there %v; want a half-done migration",
				tx.Bucket([]byte("meta")).Get([]byte("migrate8_next")) != nil, moved, tx.Bucket([]byte("history")) != nil)
		}
		return nil
	})

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range old {
		got, err := st.Warning(id)
		if err != nil || got == nil {
			t.Fatalf("warning %s: %v", id, err)
		}
		if diff := cmp.Diff(&want.Warning, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("warning %s after the upgrade (-before +after):\n%s", id, diff)
		}
	}
	st.Close()
	// The schema 10 upgrade drops the village scopes.
	for _, r := range old {
		r.Latest = pulledLatest(r.Latest)
	}
	for k, v := range others {
		others[k] = pulledLatest(v)
	}
	rawView(t, dir, func(tx *bolt.Tx) error {
		if diff := cmp.Diff(old, rawSchema8Records(t, tx)); diff != "" {
			t.Errorf("the warnings' records after the upgrade (-schema 7 +schema 8):\n%s", diff)
		}
		for _, name := range []string{"attempts", "history"} {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("bucket %s is still there", name)
			}
		}
		if tx.Bucket([]byte("meta")).Get([]byte("migrate8_next")) != nil {
			t.Error("the migration's progress is still there")
		}
		got := map[string][]byte{}
		tx.Bucket([]byte("latest")).ForEach(func(k, v []byte) error { got[string(k)] = bytes.Clone(v); return nil })
		if diff := cmp.Diff(others, got); diff != "" {
			t.Errorf("bucket latest after the upgrade, which should hold the units' and users' only (-before +after):\n%s", diff)
		}
		return nil
	})
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 || rep.Attempts != attempts || rep.Warnings != len(old) {
		t.Fatalf("check (%d warnings, %d attempts): %+v %v", len(old), attempts, rep, err)
	}
}

// TestCheck_WarningRecordsDisagree: the check of a schema-8 file finds a
// history entry of no warning, a record beside a state with a tag of no
// known kind, and a warning's latest value left in bucket latest.
func TestCheck_WarningRecordsDisagree(t *testing.T) {
	dir, _ := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of the upgraded fixture: %+v %v", rep, err)
	}
	var held string
	rawView(t, dir, func(tx *bolt.Tx) error {
		return rawStates(tx, func(id, _ []byte) error {
			if held == "" {
				held = string(id)
			}
			return nil
		})
	})
	const orphan = "00000000-0000-4000-8000-00000000dead"
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		warnings := tx.Bucket([]byte("warnings"))
		if err := warnings.Put(binary.BigEndian.AppendUint64([]byte(orphan+"\x00h"), 7), nil); err != nil {
			return err
		}
		if err := warnings.Put([]byte(held+"\x00z"), []byte("?")); err != nil {
			return err
		}
		latest := warnings.Get([]byte(held + "\x00l"))
		if latest == nil {
			return fmt.Errorf("warning %s has no latest value beside its state", held)
		}
		return tx.Bucket([]byte("latest")).Put([]byte("w"+held), bytes.Clone(latest))
	})
	wants := []string{"of warning " + orphan + ", which the store does not hold", "\\x00z\" of warning " + held + " is neither",
		"bucket latest holds \"w" + held + "\""}
	for _, want := range wants {
		if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("check did not report %q: %v", want, rep.Problems)
		}
	}
}
