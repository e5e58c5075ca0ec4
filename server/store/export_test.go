package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// ErrMigrationStopped is what StopMigrationAfter makes Open return.
var ErrMigrationStopped = errors.New("migration stopped by the test")

// SetMigrationChunk makes each migration step read at most n log entries
// until restore is called.
func SetMigrationChunk(n int) (restore func()) {
	old := migrationChunk
	migrationChunk = n
	return func() { migrationChunk = old }
}

// StopMigrationAfter makes a migration stop, as a crash would, after its
// step-th committed step, until restore is called.
func StopMigrationAfter(step int) (restore func()) {
	afterMigrationStep = func(_ uint64, n int) error {
		if n >= step {
			return ErrMigrationStopped
		}
		return nil
	}
	return func() { afterMigrationStep = nil }
}

// SetCompactChunks makes index compaction read at most read entries per
// read transaction and delete at most write per write, until restore.
func SetCompactChunks(read, write int) (restore func()) {
	oldRead, oldWrite := compactReadChunk, compactWriteChunk
	compactReadChunk, compactWriteChunk = read, write
	return func() { compactReadChunk, compactWriteChunk = oldRead, oldWrite }
}

// HoldScope holds a place on scope as a held pull of device does: it
// returns the channel that the next commit writing into scope closes, and
// the end of the hold.
func (s *Store) HoldScope(scope, device string) (<-chan struct{}, func()) {
	h, ok := s.notify.hold(scope, device)
	if !ok {
		return nil, func() {}
	}
	return h.changed(), h.end
}

// RawDB is the store's bbolt handle, for tests that read or write buckets
// as the file lays them out (an older schema's keys, an index's entries).
func (s *Store) RawDB() *bolt.DB { return s.db }

// StopMigrationToAfter makes the migration to schema to stop, as a crash
// would, after its step-th committed step (0: before its first), until
// restore is called.
func StopMigrationToAfter(to uint64, step int) (restore func()) {
	afterMigrationStep = func(t uint64, n int) error {
		if t == to && n >= step {
			return ErrMigrationStopped
		}
		return nil
	}
	return func() { afterMigrationStep = nil }
}

// EntryKinds lists the kinds of an entry's commands, in order.
func EntryKinds(entry []byte) ([]int, error) {
	cmds, err := decodeEntry(entry)
	if err != nil {
		return nil, err
	}
	kinds := make([]int, len(cmds))
	for i, c := range cmds {
		kinds[i] = int(c.kind())
	}
	return kinds, nil
}

// LastCommandKind is the highest command kind: kinds run from 1 to it.
const LastCommandKind = int(cmdSetIncarnation)

// SetListBudget makes a list request examine at most n index entries until
// restore is called.
func SetListBudget(n int) (restore func()) {
	old := listBudget
	listBudget = n
	return func() { listBudget = old }
}

// AttemptEqual is attemptEqual, which decides which attempt records a
// save rewrites.
var AttemptEqual = attemptEqual

// EncodeLogEntry and EncodeResult are the compact encoders the store
// writes the log and the results with.
var (
	EncodeLogEntry = encodeLogEntry
	EncodeResult   = encodeResult
)

// EncodeAttempt is the compact encoder the store writes attempt records
// with.
var EncodeAttempt = encodeAttempt

// EncodeState is the compact encoder the store writes warning states
// with.
var EncodeState = encodeState

// UnknownWord is the first code past the words this code knows.
var UnknownWord = byte(len(words))
