package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Schema upgrades. A store records the version of its layout in meta
// ("schema"). Open refuses a store newer than this code, before writing a
// byte to it, and brings an older one up to SchemaVersion by running each
// migration from its version to the next, in order, before the writer
// starts. A migration works in bounded steps, one transaction each; it keeps
// its progress in meta, and the step that finishes it also bumps the schema,
// so a store stopped half-way (a crash, a kill) resumes where it was at the
// next Open and never ends up marked done with work left.

// ErrNewerSchema is returned (wrapped) by Open for a store written by a newer
// fieldsyncd.
var ErrNewerSchema = errors.New("store written by a newer fieldsyncd")

// Migration is one upgrade Open ran, for the logs.
type Migration struct {
	From, To uint64
	Name     string
	// Steps is how many transactions it took in this run.
	Steps int
	Took  time.Duration
}

// migration upgrades a store from schema to-1 to to.
type migration struct {
	to   uint64
	name string
	// step does one bounded part of the work in tx and reports whether the
	// migration is complete. It must keep whatever progress it needs in
	// the store, so that the next step, in this run or the next Open,
	// carries on from it.
	step func(tx *bolt.Tx) (done bool, err error)
}

// migrations are in order: the one at index i goes to schema i+2.
var migrations = []migration{
	{to: 2, name: "devices record when they last synced (backfilled from the log)", step: backfillLastSeen},
	{to: 3, name: "each scope keeps its own tombstone horizon", step: perScopeHorizons},
	{to: 4, name: "each scope records the latest index entry of each record (built from the indexes)", step: buildLatest},
	{to: 5, name: "to-do tallies, statistics by fraud type and minutes to closing (built from the warnings)", step: buildTally},
	{to: 6, name: "the unfinished warnings' deadline index of each unit (built from the warnings)", step: buildUnfinished},
	{to: 7, name: "each warning's attempts as records of their own, and no list summary (split from the warnings)", step: splitAttempts},
	{to: 8, name: "each warning's attempts, history and latest entries beside its state (moved into the warnings)", step: colocateWarnings},
	{to: 9, name: "list indexes only in a warning's unit and its township (dropped above it)", step: dropListsAboveTownship},
	{to: 10, name: "no scope index for village units, which no device pulls (deleted with their latest entries and horizons)", step: dropVillageScopes},
	{to: 11, name: "index entries name a warning by its id's 16 bytes (nothing rewritten: both forms are read)", step: onlyMarkVersion},
	{to: 12, name: "log entries and push results written compactly from here; older ones stay as they are", step: onlyMarkVersion},
	{to: 13, name: "attempts written compactly from here; older ones stay as they are", step: onlyMarkVersion},
	{to: 14, name: "warning states written compactly from here; older ones stay as they are", step: onlyMarkVersion},
	{to: 15, name: "list indexes: none for village units (a village's list is its township's), ids as 16 bytes (rebuilt)", step: rebuildLists},
	{to: 16, name: "a warning's history as one record, latest values, histogram counts and open warnings' keys written compactly, from here; older ones stay as they are", step: onlyMarkVersion},
	{to: 17, name: "each unit's day's histogram as one record, not a key a minute (rewritten)", step: histRecords},
	{to: 18, name: "the commonest strings (entry types, statuses, methods, outcomes, fraud types) written as one-byte words from here; older values stay as they are", step: onlyMarkVersion},
}

// migrationChunk bounds how many log entries one migration step reads.
var migrationChunk = 20_000

// afterMigrationStep, when set (by tests), runs after each committed step,
// and with step 0 before a migration's first; an error stops the
// migration there, as a crash would.
var afterMigrationStep func(to uint64, step int) error

// ErrOlderSchema is returned by Open with Options.NoUpgrade for a store an
// older fieldsyncd wrote.
var ErrOlderSchema = errors.New("store written by an older fieldsyncd")

// checkSchema refuses a store newer than this code, and with noUpgrade one
// older than it, in a read-only transaction: the file is left as it was.
func checkSchema(db *bolt.DB, noUpgrade bool) error {
	return db.View(func(tx *bolt.Tx) error {
		got := schema.VersionOf(tx)
		switch {
		case got > SchemaVersion:
			return fmt.Errorf("%w: the store has schema version %d, newer than the %d this fieldsyncd understands; run the fieldsyncd that wrote it or a newer one",
				ErrNewerSchema, got, SchemaVersion)
		case noUpgrade && got != 0 && got < SchemaVersion:
			return fmt.Errorf("%w: the store has schema version %d; this fieldsyncd would upgrade it to %d, which the fieldsyncd that wrote it cannot read: upgrade it by starting this version's serve, or use the older fieldsyncd",
				ErrOlderSchema, got, SchemaVersion)
		}
		return nil
	})
}

// migrate runs the migrations from the store's schema up to SchemaVersion.
func migrate(db *bolt.DB) ([]Migration, error) {
	var ran []Migration
	for {
		var version uint64
		if err := db.View(func(tx *bolt.Tx) error { version = schema.VersionOf(tx); return nil }); err != nil {
			return ran, err
		}
		if version >= SchemaVersion {
			return ran, nil
		}
		if version < 1 || int(version-1) >= len(migrations) || migrations[version-1].to != version+1 {
			return ran, fmt.Errorf("no migration from schema version %d", version)
		}
		m := migrations[version-1]
		run := Migration{From: version, To: m.to, Name: m.name}
		start := time.Now()
		if afterMigrationStep != nil {
			if err := afterMigrationStep(m.to, 0); err != nil {
				return ran, err
			}
		}
		for done := false; !done; {
			err := db.Update(func(tx *bolt.Tx) error {
				schema.SetFill(tx)
				var err error
				if done, err = m.step(tx); err != nil || !done {
					return err
				}
				return tx.Bucket(schema.BucketMeta).Put(schema.KeySchema, schema.U64(m.to))
			})
			if err != nil {
				return ran, fmt.Errorf("migrate the store from schema %d to %d (%s): %w", version, m.to, m.name, err)
			}
			run.Steps++
			if afterMigrationStep != nil {
				if err := afterMigrationStep(m.to, run.Steps); err != nil {
					return ran, err
				}
			}
		}
		run.Took = time.Since(start)
		ran = append(ran, run)
	}
}

// backfillLastSeen gives every device the received_at of its newest log
// entry (a push, a feed import, an admin change, a photo) as LastSeen, and
// its Created when it has none. It reads the log from the newest entry
// down, chunk by chunk, so a device's first entry met is its newest; a
// device is done once it has a LastSeen, and the walk ends early once every
// device is.
func backfillLastSeen(tx *bolt.Tx) (bool, error) {
	meta, devices, logs := tx.Bucket(schema.BucketMeta), tx.Bucket(schema.BucketDevices), tx.Bucket(schema.BucketLog)
	missing := map[string]*Device{}
	err := devices.ForEach(func(k, v []byte) error {
		var d Device
		if err := decode(v, &d); err != nil {
			return fmt.Errorf("device %s: %w", k, err)
		}
		if d.LastSeen.IsZero() {
			missing[d.ID] = &d
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	next := logs.Sequence()
	if v := meta.Get(schema.KeyLastSeenNext); len(v) == 8 {
		next = binary.BigEndian.Uint64(v)
	}
	c := logs.Cursor()
	var k, v []byte
	if next > 0 {
		k, v = c.Seek(schema.U64(next))
		if k == nil {
			k, v = c.Last()
		} else if schema.Uint64(k) > next {
			k, v = c.Prev()
		}
	}
	for n := 0; k != nil && len(missing) > 0 && n < migrationChunk; k, v = c.Prev() {
		n++
		// Only two fields of each entry are needed: decode no more.
		e, err := decodeLogHead(v)
		if err != nil {
			return false, fmt.Errorf("log entry %d: %w", schema.Uint64(k), err)
		}
		if d := missing[e.DeviceID]; d != nil {
			d.LastSeen = e.ReceivedAt
			if err := put(devices, []byte(d.ID), d); err != nil {
				return false, err
			}
			delete(missing, d.ID)
		}
	}
	if k != nil && len(missing) > 0 {
		return false, meta.Put(schema.KeyLastSeenNext, schema.U64(schema.Uint64(k)))
	}
	// The whole log is read: who is left never wrote to it.
	for _, d := range missing {
		d.LastSeen = d.Created
		if err := put(devices, []byte(d.ID), d); err != nil {
			return false, err
		}
	}
	return true, meta.Delete(schema.KeyLastSeenNext)
}

// perScopeHorizons is the schema 3 upgrade. Schema 3 keeps a tombstone
// horizon per scope (bucket horizons, created at open) instead of one for
// every scope in meta. Nothing needs converting: a scope with no entry has
// dropped nothing since, and the global horizon that schema-2 compactions
// left stays in meta, never written again, as every scope's floor (which
// scopes those compactions dropped removes from is not known). The version
// bump is what matters: a schema-2 fieldsyncd would read only that frozen
// global horizon, and let a device whose cursor lies below a remove this
// code dropped carry on without it, keeping a warning (and the personal
// data in it) that left its scope. It refuses a schema-3 store instead.
func perScopeHorizons(tx *bolt.Tx) (bool, error) {
	_, err := tx.CreateBucketIfNotExists(schema.BucketHorizons)
	return true, err
}

// buildLatest is the schema 4 upgrade: it fills bucket latest from the
// scope indexes (latest.go), so that a pull sends each record from its
// latest entry only. It walks each scope's index upwards, so the last
// entry met for a record is its latest there, at most migrationChunk
// entries a step; recording a record's latest again is harmless, so a
// step redone after a crash changes nothing.
func buildLatest(tx *bolt.Tx) (bool, error) {
	meta, idx, latest := tx.Bucket(schema.BucketMeta), tx.Bucket(schema.BucketIdx), tx.Bucket(schema.BucketLatest)
	var next uint64
	var from []byte
	if v := meta.Get(schema.KeyLatestNext); len(v) > 8 {
		next, from = binary.BigEndian.Uint64(v[:8]), append([]byte(nil), v[8:]...)
	}
	// The step's values, written once each at its end.
	values := map[string][]byte{}
	flush := func() error {
		for rec, v := range values {
			if err := latest.Put([]byte(rec), v); err != nil {
				return err
			}
		}
		return nil
	}
	scopes := idx.Cursor()
	scope, _ := scopes.First()
	if from != nil {
		scope, _ = scopes.Seek(from)
	}
	n := 0
	for ; scope != nil; scope, _ = scopes.Next() {
		b := idx.Bucket(scope)
		if b == nil {
			continue
		}
		if len(scope) > 255 {
			return false, fmt.Errorf("scope name %.20q... is longer than 255 bytes", scope)
		}
		// Keys and values point into the file's memory map, which a
		// write may move: copy what is kept.
		name := []string{string(scope)}
		c := b.Cursor()
		for k, v := c.Seek(schema.U64(next)); k != nil; k, v = c.Next() {
			if n == migrationChunk {
				if err := flush(); err != nil {
					return false, err
				}
				return false, meta.Put(schema.KeyLatestNext, append(schema.U64(schema.Uint64(k)), name[0]...))
			}
			n++
			_, r, ok := schema.ParseIndexValue(v)
			if !ok {
				continue
			}
			rec := string(r)
			old, ok := values[rec]
			if !ok {
				old = latest.Get(r)
			}
			values[rec] = schema.WithLatestV15(old, name, schema.Uint64(k))
		}
		next = 0
	}
	if err := flush(); err != nil {
		return false, err
	}
	return true, meta.Delete(schema.KeyLatestNext)
}

// buildTally is the schema 5 upgrade: it counts every warning into the
// to-do tallies (tally.go) and the statistics by fraud type
// (stats_types.go), and adds the minutes to closing of each closed one to
// the histograms, as the write path does for a new warning from schema 5
// on. It walks the warnings by id, at most migrationChunk a step, and
// keeps the next id in meta in the step's own transaction, so a warning is
// counted exactly once however many times the upgrade is stopped.
func buildTally(tx *bolt.Tx) (bool, error) {
	return eachWarningStep(tx, schema.KeyTallyNext, func(w *syncproto.Warning) error {
		t := TallyOf(w)
		if err := addTally(tx, w.Unit, &t, nil); err != nil {
			return err
		}
		return backfillStats(tx, w)
	})
}

// eachWarningStep is one step of a migration that visits every warning:
// it calls fn for up to migrationChunk warnings from the id kept in meta
// under next, keeps where it stopped, and reports whether it visited the
// last one (its progress then removed).
func eachWarningStep(tx *bolt.Tx, next []byte, fn func(*syncproto.Warning) error) (bool, error) {
	meta := tx.Bucket(schema.BucketMeta)
	n := 0
	for k, v := range warningStates(tx, meta.Get(next)) {
		if n == migrationChunk {
			return false, meta.Put(next, bytes.Clone(k))
		}
		n++
		var w syncproto.Warning
		if err := DecodeState(v, &w); err != nil {
			return false, fmt.Errorf("warning %s: %w", k, err)
		}
		if err := fn(&w); err != nil {
			return false, err
		}
	}
	return true, meta.Delete(next)
}

// buildUnfinished (schema 6) puts every warning not closed into the
// unfinished deadline index of its unit and, for a village's, its
// township (the units schema 9 keeps), in schema 14's key form,
// migrationChunk warnings a step; the schema 15 upgrade rebuilds them.
func buildUnfinished(tx *bolt.Tx) (bool, error) {
	idx := tx.Bucket(schema.BucketList)
	return eachWarningStep(tx, schema.KeyUnfinishedNext, func(w *syncproto.Warning) error {
		if !unfinished(w) {
			return nil
		}
		for _, u := range listUnitsV14(w.Unit) {
			if err := idx.Put(listKeyText(u, tagUnfinished, w.Deadline, w.ID), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// listUnitsV14 are the units whose list indexes held a warning of unit
// from schema 9 to 14: its own, and its township's when it lies in a
// village.
func listUnitsV14(unit string) []string {
	if syncproto.UnitLevel(unit) == syncproto.RoleVillage {
		return []string{unit, syncproto.ParentCode(unit)}
	}
	return []string{unit}
}

// dropListsAboveTownship deletes a warning's list keys in the indexes of
// the units above its township (or above its own unit, for a warning at
// a township or above), which no list reads once a county's or the city's
// merges its townships' (listSources). A warning's sort times never
// change, so its keys are known from its state.
func dropListsAboveTownship(tx *bolt.Tx) (bool, error) {
	idx := tx.Bucket(schema.BucketList)
	return eachWarningStep(tx, schema.KeyListsNext, func(w *syncproto.Warning) error {
		kept := listUnitsV14(w.Unit)
		for _, u := range syncproto.UnitChain(w.Unit) {
			if slices.Contains(kept, u) {
				continue
			}
			for _, tag := range []byte{'r', 'd', 'w', tagUnfinished} {
				if err := idx.Delete(listKeyText(u, tag, sortTime(tag, w), w.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// rebuildLists (schema 15) moves each warning's list keys to schema 15's
// layout, migrationChunk warnings a step: it deletes the keys schema 14
// wrote (in the warning's unit and, for a village's, its township; the id
// as its text) and puts the warning's keys as the write path does (only
// in its township for a village's, the id as its 16 bytes). A warning's
// sort times never change, so its keys are known from its state.
func rebuildLists(tx *bolt.Tx) (bool, error) {
	idx := tx.Bucket(schema.BucketList)
	return eachWarningStep(tx, schema.KeyListsRebuildNext, func(w *syncproto.Warning) error {
		for _, u := range listUnitsV14(w.Unit) {
			for _, tag := range []byte{'r', 'd', 'w', tagUnfinished} {
				if err := idx.Delete(listKeyText(u, tag, sortTime(tag, w), w.ID)); err != nil {
					return err
				}
			}
		}
		return updateList(tx, nil, w)
	})
}

// splitAttempts is the schema 7 upgrade: it moves each warning's attempts
// out of its state into records of their own in bucket attempts (schema
// 7's layout, which the schema 8 upgrade that follows moves again),
// rewrites the state without them, and at the end deletes the list summaries, which a
// list no longer reads. It goes by warning id, migrationChunk warnings a
// step, with the next id kept in meta in the step's own transaction. The
// chunk is read first and written after: a bucket written under a cursor
// moves it.
func splitAttempts(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket(schema.BucketMeta)
	attempts, err := tx.CreateBucketIfNotExists(schema.BucketAttempts)
	if err != nil {
		return false, err
	}
	var ws []*syncproto.Warning
	var next []byte
	for k, v := range warningStates(tx, meta.Get(schema.KeyAttemptsNext)) {
		if len(ws) == migrationChunk {
			next = bytes.Clone(k)
			break
		}
		var w syncproto.Warning
		if err := DecodeState(v, &w); err != nil {
			return false, fmt.Errorf("warning %s: %w", k, err)
		}
		ws = append(ws, &w)
	}
	for _, w := range ws {
		for i := range w.Attempts {
			// The older form, not the compact one of schema 13: a store
			// stopped at schema 7 is one a schema-7 fieldsyncd reads, and
			// the schema 8 upgrade moves the records as they are.
			if err := put(attempts, schema.AttemptKeyV7(w.ID, i), &w.Attempts[i]); err != nil {
				return false, fmt.Errorf("warning %s: attempt %d: %w", w.ID, i, err)
			}
		}
		// The state in the older form too, without its attempts: a store
		// stopped at schema 7 is one a schema-7 fieldsyncd reads.
		state := *w
		state.Attempts = nil
		if err := put(tx.Bucket(schema.BucketWarnings), []byte(w.ID), &state); err != nil {
			return false, err
		}
	}
	if next != nil {
		return false, meta.Put(schema.KeyAttemptsNext, next)
	}
	if tx.Bucket(schema.BucketSummary) != nil {
		if err := tx.DeleteBucket(schema.BucketSummary); err != nil {
			return false, fmt.Errorf("delete the list summaries: %w", err)
		}
	}
	return true, meta.Delete(schema.KeyAttemptsNext)
}

// colocateWarnings is the schema 8 upgrade: it moves each warning's
// attempts (bucket attempts), history entries (bucket history) and latest
// entries (bucket latest) beside its state in bucket warnings
// (warningkeys.go), so that an op on a warning dirties one page of the
// file where it dirtied four. It goes by warning id, migrationChunk
// warnings a step, with the next id kept in meta in the step's own
// transaction; each step deletes the latest entries it moved, which
// bucket latest keeps for units and users. The last step moves the latest
// entries of any warning the store does not hold (none in a consistent
// store, kept rather than lost) and deletes buckets attempts and history:
// what is left in them belongs to no warning, and no reader, which starts
// from a state, ever met it.
func colocateWarnings(tx *bolt.Tx) (bool, error) {
	meta, warnings := tx.Bucket(schema.BucketMeta), tx.Bucket(schema.BucketWarnings)
	old := schema.Latest{Others: tx.Bucket(schema.BucketLatest)}
	// A sub-record to write: read first, written after, since a bucket
	// written under a cursor moves it; copied, since a write may move
	// the file's memory.
	type record struct{ k, v []byte }
	var ids [][]byte
	var next []byte
	for k := range warningStates(tx, meta.Get(schema.KeyColocateNext)) {
		if len(ids) == migrationChunk {
			next = bytes.Clone(k)
			break
		}
		ids = append(ids, bytes.Clone(k))
	}
	var moved []record
	var recs [][]byte
	movedRec := map[string]bool{}
	for _, id := range ids {
		for i, v := range oldSubRecords(tx, schema.BucketAttempts, id, 4) {
			moved = append(moved, record{schema.WarningAttemptKey(string(id), int(schema.Uint64(i))), bytes.Clone(v)})
		}
		for seq := range oldSubRecords(tx, schema.BucketHistory, id, 8) {
			moved = append(moved, record{schema.WarningHistoryKey(string(id), schema.Uint64(seq)), nil})
		}
		rec := append([]byte{schema.RecWarning}, id...)
		if v := old.Get(rec); v != nil {
			moved = append(moved, record{schema.WarningLatestKey(id), bytes.Clone(v)})
			recs = append(recs, rec)
			movedRec[string(rec)] = true
		}
	}
	if next == nil {
		// The last step: the latest entries of warnings not held.
		c := old.Others.Cursor()
		for k, v := c.Seek([]byte{schema.RecWarning}); k != nil && k[0] == schema.RecWarning; k, v = c.Next() {
			if !movedRec[string(k)] {
				moved = append(moved, record{schema.WarningLatestKey(k[1:]), bytes.Clone(v)})
				recs = append(recs, bytes.Clone(k))
			}
		}
	}
	for _, r := range moved {
		if err := warnings.Put(r.k, r.v); err != nil {
			return false, err
		}
	}
	for _, rec := range recs {
		if err := old.Delete(rec); err != nil {
			return false, err
		}
	}
	if next != nil {
		return false, meta.Put(schema.KeyColocateNext, next)
	}
	for _, name := range [][]byte{schema.BucketAttempts, schema.BucketHistory} {
		if tx.Bucket(name) == nil {
			continue
		}
		if err := tx.DeleteBucket(name); err != nil {
			return false, fmt.Errorf("delete bucket %s: %w", name, err)
		}
	}
	return true, meta.Delete(schema.KeyColocateNext)
}

// oldSubRecords yields the records of warning id in a bucket of schema 7
// and older that keys them by the id and a number of size bytes (bucket
// attempts: 4, history: 8), as the number's bytes and the value; nothing
// when the store has no such bucket.
func oldSubRecords(tx *bolt.Tx, name, id []byte, size int) iter.Seq2[[]byte, []byte] {
	return func(yield func(n, v []byte) bool) {
		b := tx.Bucket(name)
		if b == nil {
			return
		}
		c := b.Cursor()
		for k, v := c.Seek(id); k != nil && bytes.HasPrefix(k, id); k, v = c.Next() {
			if len(k) != len(id)+size {
				continue // a record of another warning whose id starts with this one
			}
			if !yield(k[len(id):], v) {
				return
			}
		}
	}
}

// Phases of the schema 10 upgrade, the first byte of its progress in meta
// (schema.KeyVillageScopesNext); what follows it is where the phase goes
// on from.
const (
	villageLatestOthers   byte = 'l' // bucket latest, by key
	villageLatestWarnings byte = 'w' // the warnings' latest values, by id
	villageIndexes        byte = 'i' // the village scope indexes, by name
)

// dropVillageScopes is the schema 10 upgrade: it deletes the scope index of
// every village unit (schema.PulledUnit: no device pulls one), with every
// latest entry that names one and their horizons, so that a store of
// schema 10 holds nothing of them, as the write path writes none. It goes
// in three phases, migrationChunk records or index entries a step, with
// its progress in meta: the latest values of bucket latest (units and
// users), then the warnings' (beside their states), then the village
// indexes and the horizons. It walks every latest value rather than only
// the records the village indexes hold, since a compaction stopped before
// forgetGone leaves latest entries of records a scope no longer holds.
func dropVillageScopes(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket(schema.BucketMeta)
	phase, from := villageLatestOthers, []byte(nil)
	if v := meta.Get(schema.KeyVillageScopesNext); len(v) > 0 {
		phase, from = v[0], bytes.Clone(v[1:])
	}
	progress := func(phase byte, at []byte) error {
		return meta.Put(schema.KeyVillageScopesNext, append([]byte{phase}, at...))
	}
	switch phase {
	case villageLatestOthers:
		latest := tx.Bucket(schema.BucketLatest)
		next, err := dropVillageLatest(latest, func(yield func(k, v []byte) bool) {
			c := latest.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for ; k != nil && yield(k, v); k, v = c.Next() {
			}
		})
		if err != nil || next != nil {
			return false, errors.Join(err, progress(villageLatestOthers, next))
		}
		return false, progress(villageLatestWarnings, nil)
	case villageLatestWarnings:
		warnings := tx.Bucket(schema.BucketWarnings)
		next, err := dropVillageLatest(warnings, func(yield func(k, v []byte) bool) {
			for id := range schema.WarningStates(warnings, from) {
				k := schema.WarningLatestKey(id)
				if !yield(k, warnings.Get(k)) {
					return
				}
			}
		})
		if next != nil {
			// Resume at the warning, not at its latest value's key.
			next, _, _, _ = schema.SplitWarningKey(next)
		}
		if err != nil || next != nil {
			return false, errors.Join(err, progress(villageLatestWarnings, next))
		}
		return false, progress(villageIndexes, nil)
	case villageIndexes:
		next, err := dropVillageIndexes(tx, from)
		if err != nil || next != nil {
			return false, errors.Join(err, progress(villageIndexes, next))
		}
		horizons := tx.Bucket(schema.BucketHorizons)
		var gone [][]byte
		c := horizons.Cursor()
		for k, _ := c.Seek([]byte(schema.UnitScopePrefix)); k != nil && bytes.HasPrefix(k, []byte(schema.UnitScopePrefix)); k, _ = c.Next() {
			if !schema.PulledScope(k) {
				gone = append(gone, bytes.Clone(k))
			}
		}
		for _, k := range gone {
			if err := horizons.Delete(k); err != nil {
				return false, err
			}
		}
		return true, meta.Delete(schema.KeyVillageScopesNext)
	}
	return false, fmt.Errorf("progress %q of the schema 10 upgrade is of no phase", phase)
}

// dropVillageLatest rewrites, in b, the latest values that values yields
// (key, value; a nil value is none) without their village scopes, up to
// migrationChunk of them, and returns the key to go on from (nil: values
// is done). A value left with no scope is deleted. It reads first and
// writes after: a bucket written under a cursor moves it.
func dropVillageLatest(b *bolt.Bucket, values func(yield func(k, v []byte) bool)) ([]byte, error) {
	type rewrite struct{ k, v []byte }
	var out []rewrite
	var next []byte
	n := 0
	values(func(k, v []byte) bool {
		if n == migrationChunk {
			next = bytes.Clone(k)
			return false
		}
		n++
		village := false
		schema.ForEachLatest(v, func(scope []byte, _ uint64) bool {
			village = !schema.PulledScope(scope)
			return !village
		})
		if !village {
			return true
		}
		kept := []byte{}
		schema.ForEachLatest(v, func(scope []byte, seq uint64) bool {
			if schema.PulledScope(scope) {
				kept = schema.WithLatestV15(kept, []string{string(scope)}, seq)
			}
			return true
		})
		out = append(out, rewrite{bytes.Clone(k), kept})
		return true
	})
	for _, r := range out {
		var err error
		if len(r.v) == 0 {
			err = b.Delete(r.k)
		} else {
			err = b.Put(r.k, r.v)
		}
		if err != nil {
			return nil, err
		}
	}
	return next, nil
}

// dropVillageIndexes deletes the village scope indexes from the one named
// from on, in name order, up to migrationChunk entries: a whole index
// that fits goes at once, a larger one loses its first entries, and the
// next step goes on with it. It returns the name to go on from (nil: none
// is left).
func dropVillageIndexes(tx *bolt.Tx, from []byte) ([]byte, error) {
	idx := tx.Bucket(schema.BucketIdx)
	prefix := []byte(schema.UnitScopePrefix)
	if len(from) == 0 {
		from = prefix
	}
	var whole [][]byte
	var part []byte
	var partKeys [][]byte
	budget := migrationChunk
	c := idx.Cursor()
	for name, _ := c.Seek(from); name != nil && bytes.HasPrefix(name, prefix); name, _ = c.Next() {
		b := idx.Bucket(name)
		if b == nil || schema.PulledScope(name) {
			continue
		}
		var keys [][]byte
		ec := b.Cursor()
		k, _ := ec.First()
		for ; k != nil && len(keys) < budget; k, _ = ec.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if k != nil {
			part, partKeys = bytes.Clone(name), keys
			break
		}
		whole = append(whole, bytes.Clone(name))
		budget -= len(keys)
	}
	for _, name := range whole {
		if err := idx.DeleteBucket(name); err != nil {
			return nil, fmt.Errorf("delete idx/%s: %w", name, err)
		}
	}
	if part == nil {
		return nil, nil
	}
	b := idx.Bucket(part)
	for _, k := range partKeys {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return part, nil
}

// onlyMarkVersion is the step of an upgrade that converts nothing: from
// its schema on the store writes a record in a new form, and every reader
// takes both, so the records written before stay as they are (schema 11:
// index entries naming a warning by 16 bytes; 12: compact log entries and
// push results, logcodec.go; 13: compact attempts, attemptcodec.go; 14:
// compact warning states, statecodec.go). The bump alone keeps off an
// older fieldsyncd, which could not read the new form.
func onlyMarkVersion(*bolt.Tx) (bool, error) { return true, nil }

// histRecords turns the histograms' minute keys into records (hist.go),
// migrationChunk keys a step in key order, so each histogram's minutes
// come together; a histogram cut by a step's end is merged into the
// record the step before wrote. The record's key sorts before its
// minutes' keys, so a step going on from the next minute key never meets
// a record.
func histRecords(tx *bolt.Tx) (bool, error) {
	meta, hist := tx.Bucket(schema.BucketMeta), tx.Bucket(schema.BucketStatsHist)
	var minutes []keyed[int64]
	var next []byte
	c := hist.Cursor()
	k, v := c.First()
	if from := meta.Get(schema.KeyHistRecordsNext); from != nil {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if len(minutes) == migrationChunk {
			next = bytes.Clone(k)
			break
		}
		if _, _, isMinute := histKeyForm(k); !isMinute {
			continue
		}
		n, ok := HistCount(v)
		if !ok {
			// A count that does not decode was left out of the
			// statistics; it goes with the others.
			n = 0
		}
		minutes = append(minutes, keyed[int64]{key: bytes.Clone(k), val: n})
	}
	// Deleting while the cursor walked would have moved it; the keys are
	// copies, so the bucket can change now.
	for _, m := range minutes {
		if err := hist.Delete(m.key); err != nil {
			return false, err
		}
	}
	if err := flushHists(hist, minutes); err != nil {
		return false, err
	}
	if next != nil {
		return false, meta.Put(schema.KeyHistRecordsNext, next)
	}
	return true, meta.Delete(schema.KeyHistRecordsNext)
}
