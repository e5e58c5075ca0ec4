package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckReport is what Check found.
type CheckReport struct {
	// Schema is the layout version the store records.
	Schema     uint64
	LogEntries uint64
	Warnings   int
	Problems   []string
}

// Check opens the store in dir read-only and checks it: bbolt's own
// consistency check of every page, and that the log's sequences run from 1
// with no gap up to the bucket's sequence. It needs the server stopped
// (bbolt locks the file).
func Check(dir string) (*CheckReport, error) {
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store at %s: %w", dir, err)
	}
	return CheckFile(path)
}

// CheckFile is Check of one bbolt file, wherever it is: a compacted copy is
// checked before it replaces the store's file.
func CheckFile(path string) (*CheckReport, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s (is fieldsyncd still running?): %w", path, err)
	}
	defer db.Close()
	rep := &CheckReport{}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			rep.Problems = append(rep.Problems, "bbolt: "+err.Error())
		}
		logs := tx.Bucket(bucketLog)
		if logs == nil {
			return errors.New("this is not a fieldsync store: it has no log")
		}
		rep.Schema = schemaOf(tx)
		var want uint64 = 1
		err := logs.ForEach(func(k, _ []byte) error {
			if got := binary.BigEndian.Uint64(k); got != want {
				rep.Problems = append(rep.Problems, fmt.Sprintf("log: seq %d where %d was expected", got, want))
				want = got
			}
			want++
			rep.LogEntries++
			return nil
		})
		if err != nil {
			return err
		}
		if seq := logs.Sequence(); seq != rep.LogEntries {
			rep.Problems = append(rep.Problems, fmt.Sprintf("log: %d entries but the sequence is at %d", rep.LogEntries, seq))
		}
		if w := tx.Bucket(bucketWarnings); w != nil {
			rep.Warnings = w.Stats().KeyN
		}
		return nil
	})
	return rep, err
}
