package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A warning is stored in parts (schema 7 on): its state, with no
// attempts, and each attempt as a record of its own, beside the state in
// bucket warnings (schema 8, warningkeys.go). An op changes the state and
// adds one attempt at most, so the writer puts a small state and the new
// attempt instead of the whole warning with every attempt in it; a list,
// the statistics and the tallies read the state alone.

// readWarning is a warning as the file holds it, state and attempts
// assembled; nil when there is none. Readers go through loadWarning, which
// keeps decoded warnings; those needing no attempts read readState.
func readWarning(tx *bolt.Tx, id string) (*syncproto.Warning, error) {
	w, err := readState(tx, id)
	if w == nil || err != nil {
		return w, err
	}
	if w.Attempts, err = readAttempts(tx, id); err != nil {
		return nil, err
	}
	return w, nil
}

// readState is a warning's state without its attempts (Attempts nil, but
// for a state of the older form that holds some); nil when there is none.
// Both forms are read (statecodec.go).
func readState(tx *bolt.Tx, id string) (*syncproto.Warning, error) {
	data := tx.Bucket(schema.BucketWarnings).Get([]byte(id))
	if data == nil {
		return nil, nil
	}
	var w syncproto.Warning
	if err := DecodeState(data, &w); err != nil {
		return nil, fmt.Errorf("warning %s: %w", id, err)
	}
	return &w, nil
}

// readAttempts is a warning's attempts in the order recorded; empty, not
// nil, when it has none, as the feed creates a warning (a client sees
// "attempts": [] either way).
func readAttempts(tx *bolt.Tx, id string) ([]syncproto.Attempt, error) {
	out := []syncproto.Attempt{}
	for _, v := range subRecords(tx, id, schema.TagAttempt) {
		var a syncproto.Attempt
		if err := DecodeAttempt(v, &a); err != nil {
			return nil, fmt.Errorf("warning %s: attempt %d: %w", id, len(out), err)
		}
		out = append(out, a)
	}
	return out, nil
}

// putState stores a warning's state without its attempts, in the compact
// form (statecodec.go), which leaves them out: w, often the cached value
// readers share, is not changed.
func putState(tx *bolt.Tx, w *syncproto.Warning) error {
	return tx.Bucket(schema.BucketWarnings).Put([]byte(w.ID), encodeState(w))
}

// putAttempts writes the attempts of after that before lacks or holds
// otherwise (a redaction erases notes and places), in the compact form
// (attemptcodec.go; an older record a redaction rewrites becomes compact),
// and deletes those past after's last, which Apply never does (attempts
// are only appended) but would leave behind. It depends on before and after only, so every node
// of a cluster writes the same records.
func putAttempts(tx *bolt.Tx, before, after *syncproto.Warning) error {
	var old []syncproto.Attempt
	if before != nil {
		old = before.Attempts
	}
	b := tx.Bucket(schema.BucketWarnings)
	for i := range after.Attempts {
		if i < len(old) && attemptEqual(&old[i], &after.Attempts[i]) {
			continue
		}
		if err := b.Put(schema.WarningAttemptKey(after.ID, i), encodeAttempt(&after.Attempts[i])); err != nil {
			return fmt.Errorf("warning %s: attempt %d: %w", after.ID, i, err)
		}
	}
	for i := len(after.Attempts); i < len(old); i++ {
		if err := b.Delete(schema.WarningAttemptKey(after.ID, i)); err != nil {
			return err
		}
	}
	return nil
}

// attemptEqual reports whether two attempts would be stored alike: every
// field, the place and the photos included.
func attemptEqual(a, b *syncproto.Attempt) bool {
	return a.ID == b.ID && a.By == b.By && a.DeviceID == b.DeviceID && a.Method == b.Method &&
		a.Reached == b.Reached && a.Outcome == b.Outcome && a.LossFen == b.LossFen && a.Notes == b.Notes &&
		a.At.Equal(b.At) && a.ReceivedAt.Equal(b.ReceivedAt) && a.Version == b.Version &&
		locationEqual(a.Location, b.Location) && slices.Equal(a.Photos, b.Photos)
}

func locationEqual(a, b *syncproto.Location) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
