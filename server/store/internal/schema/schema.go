// Package schema is how a fieldsync store lies on disk, written once for
// the two packages that read it: server/store, which writes and serves
// it, and server/store/storefile, which checks, restores and compacts the
// files of a stopped one. It holds the bucket and meta key names, the
// encodings of keys and values that both read, where the photos lie beside
// the database, and the names of a backup stream's entries. What only the
// store reads (a list key, a statistics record) stays in the store.
//
// Layout (values are MessagePack, ordered keys big-endian uint64; the log's
// and the results' values from schema 12 on, the attempts' from schema 13
// on and the warning states' from schema 14 on are the compact form of
// server/store/logcodec.go, 0xc1 and then a MessagePack array, beside the
// older maps, which stay):
//
//	meta        schema -> schema version (uint64); incarnation -> 16 random
//	            bytes; active_kid -> the signing key's kid;
//	            tombstone_horizon -> log seq (uint64), only in a store a
//	            schema-2 compaction ran on, frozen since: removes of any scope
//	            at or below it may be gone; migrate2_next -> log seq (only
//	            while the schema 2 migration is part-way); migrateN_next,
//	            migrate_village_scopes_next -> where a part-way
//	            migration goes on from
//	horizons    scope -> log seq (uint64): the newest remove compaction
//	            dropped from idx/<scope>; a cursor of that scope below it (or
//	            below meta tombstone_horizon) resets
//	log         seq -> LogEntry (op, actor, device, received_at, result);
//	            compact from schema 12 on (logcodec.go)
//	warnings    warning id -> syncproto.Warning without its attempts (the
//	            state: what sync, lists, statistics and tallies need;
//	            compact from schema 14 on, statecodec.go), and
//	            beside it, under the id + 0x00 + a tag (schema 8 on,
//	            warnings.go): its attempts ('a' + big-endian uint32
//	            ordinal -> syncproto.Attempt, in the order recorded,
//	            ordinals 0, 1, 2... with no gap; compact from schema 13
//	            on, attemptcodec.go), its history ('h' -> the seqs of
//	            the log entries of the warning, schema.AppendHistory,
//	            from schema 16 on; up to schema 15 'h' + seq -> nothing,
//	            an entry each, still read) and its latest entries ('l' ->
//	            the value latest.go describes)
//	attempts    (schema 7 only) warning id + big-endian uint32 ordinal ->
//	            syncproto.Attempt (AttemptKeyV7); the schema 8 upgrade
//	            moves them into warnings and deletes it
//	external    feed external_id -> warning id (its 16 bytes from schema 15
//	            on, schema.AppendWarningID; only its key is read)
//	idx/<scope> seq -> kind, entity, id (index.go: from schema 11 a
//	            warning as 'W' and its id's 16 bytes); scope: "unit/<code>"
//	            or "user/<id>"; after compaction, at most one entry per
//	            record; schema 10 on, no village unit's (scopes.go)
//	latest      entity + id -> for each scope holding an entry of the
//	            record, the seq of its latest one there (latest.go); a
//	            unit's and a user's: a warning's lies in warnings (schema 8
//	            on)
//	devices     device id -> Device (owner, last_client_seq, revoked,
//	            last_seen: the last push, or pull as flushed by the app;
//	            session: the number its access tokens carry, and when it
//	            ends; sequence: the last session number given, devices.go)
//	userdevices user id + "/" + device id -> nothing (the devices a user
//	            signed in or refreshed from, for the cap per user)
//	results     device id + client_seq -> syncproto.Result; compact from
//	            schema 12 on, the client_seq taken from the key
//	units       code -> syncproto.Unit
//	users       user id -> User; usernames: username -> id
//	unitusers   unit code + "/" + user id -> nothing (cadres of a unit)
//	refresh     SHA-256 of a refresh token -> RefreshToken (owner, chain,
//	            when it was spent and the hash of its successor)
//	keys        kid -> SigningKey (meta holds the active kid)
//	blobs       sha256 -> BlobMeta (bytes live beside the database)
//	blobrefs    sha256 + warning id -> nothing
//	history     (schema 7 and older) warning id + seq -> nothing (the log
//	            entries of a warning); the schema 8 upgrade moves them into
//	            warnings and deletes it
//	audit       seq -> AuditEntry (who read which warning's personal data)
//	stats       unit + "/" + day -> counts of the warnings received that day
//	statshist   unit + "/" + day + kind + minute -> how many took that long
//	            (a uvarint from schema 16 on, 8 bytes big-endian before)
//	statstype   unit + "/" + day + fraud type -> counts of that type's
//	            warnings received that day (stats_types.go)
//	todo        unit -> the to-do tally of its subtree's warnings: open,
//	            waiting for dispatch, assignment, review, escalated, flagged
//	            (tally.go)
//	open        deadline + warning id (its 16 bytes from schema 16 on) ->
//	            unit and day, for open warnings
//	list        unit, 0, sort tag, time, warning id -> nothing (ordered lists;
//	            from schema 15 on no village unit's, its township's serving
//	            it, and the id as its 16 bytes)
//	summary     (schema 6 and older) warning id -> what a list shows and
//	            filters on; the schema 7 upgrade deletes it, a list reads
//	            the state in warnings
//	toarchive   closed_at + warning id -> nothing: closed, still on the phone
//	toredact    closed_at + warning id -> nothing: archived, not yet redacted
//	photodays   device id -> the day and the bytes and number of photos
//	            it stored that day, Beijing time (photos.go)
//
// The types named above (LogEntry, Device, User, ...) are the store's, and
// so are the files named (latest.go, devices.go, photos.go).
package schema

import (
	"encoding/binary"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Bucket names, every one in Buckets created when a store opens.
var (
	BucketMeta        = []byte("meta")
	BucketLog         = []byte("log")
	BucketWarnings    = []byte("warnings")
	BucketExternal    = []byte("external")
	BucketIdx         = []byte("idx")
	BucketDevices     = []byte("devices")
	BucketResults     = []byte("results")
	BucketUnits       = []byte("units")
	BucketUsers       = []byte("users")
	BucketUsernames   = []byte("usernames")
	BucketUnitUsers   = []byte("unitusers")
	BucketRefresh     = []byte("refresh")
	BucketKeys        = []byte("keys")
	BucketBlobs       = []byte("blobs")
	BucketBlobRefs    = []byte("blobrefs")
	BucketAudit       = []byte("audit")
	BucketStats       = []byte("stats")
	BucketStatsHist   = []byte("statshist")
	BucketOpen        = []byte("open")
	BucketList        = []byte("list")
	BucketToArchive   = []byte("toarchive")
	BucketToRedact    = []byte("toredact")
	BucketHorizons    = []byte("horizons")
	BucketLatest      = []byte("latest")
	BucketUserDevices = []byte("userdevices")
	BucketPhotoDays   = []byte("photodays")
	BucketStatsType   = []byte("statstype")
	BucketTodo        = []byte("todo")

	// BucketHistory and BucketAttempts are where a warning's history
	// (schema 7 and older) and attempts (schema 7) lay before schema 8
	// put them beside its state; no longer created, the schema 8
	// upgrade deletes them.
	BucketHistory  = []byte("history")
	BucketAttempts = []byte("attempts")

	// BucketSummary is the copy of each warning's list fields that
	// schema 6 and older kept; no longer created, the schema 7 upgrade
	// deletes it.
	BucketSummary = []byte("summary")

	// Buckets lists them all.
	Buckets = [][]byte{BucketMeta, BucketLog, BucketWarnings, BucketExternal, BucketIdx,
		BucketDevices, BucketResults, BucketUnits, BucketUsers, BucketUsernames,
		BucketUnitUsers, BucketRefresh, BucketKeys, BucketBlobs, BucketBlobRefs, BucketAudit, BucketStats, BucketStatsHist, BucketOpen, BucketList, BucketToArchive, BucketToRedact, BucketHorizons, BucketLatest,
		BucketUserDevices, BucketPhotoDays, BucketStatsType, BucketTodo}
)

// Keys of bucket meta.
var (
	KeySchema      = []byte("schema")
	KeyIncarnation = []byte("incarnation")
	KeyActiveKID   = []byte("active_kid")
	// KeyAppliedIndex is the index of the last group of writes applied,
	// written in that group's transaction: a count of group commits on
	// one node, the raft index of the entry in a cluster, from which a
	// node resumes its log (docs/CLUSTER.md).
	KeyAppliedIndex = []byte("applied_index")
	// KeyTombstoneHorizon is the one horizon of every scope that schema-2
	// fieldsyncd kept: a log seq at or below which it may have dropped
	// remove entries from any scope. No current code writes it; it is
	// read as the floor of every scope's horizon, since which scopes
	// those drops were in is not known.
	KeyTombstoneHorizon = []byte("tombstone_horizon")
	// KeyLastSeenNext is the progress of the schema 2 migration: the next
	// log seq to read, going down.
	KeyLastSeenNext = []byte("migrate2_next")
	// KeyLatestNext is the progress of the schema 4 migration: the next
	// index entry to read, as its seq (8 bytes) then its scope's name.
	KeyLatestNext = []byte("migrate4_next")
	// KeyTallyNext is the progress of the schema 5 migration: the next
	// warning id to count.
	KeyTallyNext = []byte("migrate5_next")
	// KeyUnfinishedNext is the progress of the schema 6 migration: the
	// next warning id to index.
	KeyUnfinishedNext = []byte("migrate6_next")
	// KeyAttemptsNext is the progress of the schema 7 migration: the next
	// warning id whose attempts to move into their own records.
	KeyAttemptsNext = []byte("migrate7_next")
	// KeyColocateNext is the progress of the schema 8 migration: the
	// next warning id whose attempts, history and latest entries to move
	// beside its state.
	KeyColocateNext = []byte("migrate8_next")
	// KeyListsNext is the progress of the upgrade that keeps list indexes
	// only in a warning's unit and its township: the next warning id.
	KeyListsNext = []byte("migrate_lists_next")
	// KeyVillageScopesNext is the progress of the schema 10 migration:
	// its phase (one byte) and where the phase goes on from.
	KeyVillageScopesNext = []byte("migrate_village_scopes_next")
	// KeyListsRebuildNext is the progress of the schema 15 migration,
	// which rebuilds the list indexes: the next warning id.
	KeyListsRebuildNext = []byte("migrate_lists_rebuild_next")
	// KeyHistRecordsNext is the progress of the schema 17 migration,
	// which turns the histograms' minute keys into a record a day: the
	// next minute key.
	KeyHistRecordsNext = []byte("migrate_hist_records_next")
)

// U64 is v big-endian: an ordered key (a log seq), or a number kept as a
// value (the schema version, a horizon).
func U64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// Uint64 reads a big-endian number of up to 8 bytes, such as U64 wrote.
func Uint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// AttemptKeyV7 is the key of a warning's attempt at ordinal i (from 0) in
// schema 7's bucket attempts: the id, then i as a big-endian uint32, so a
// warning's attempts lay together in the order recorded. Only the schema 7
// and 8 upgrades and the check of a schema-7 file use it.
func AttemptKeyV7(warningID string, i int) []byte {
	k := make([]byte, 0, len(warningID)+4)
	k = append(k, warningID...)
	return binary.BigEndian.AppendUint32(k, uint32(i))
}

// SplitAttemptKeyV7 is the warning id and ordinal of an AttemptKeyV7,
// and false for a key too short to be one.
func SplitAttemptKeyV7(k []byte) (warningID []byte, i uint32, ok bool) {
	if len(k) < 5 {
		return nil, 0, false
	}
	n := len(k) - 4
	return k[:n], binary.BigEndian.Uint32(k[n:]), true
}

// VersionOf is the schema version the store records; 0 in a file that
// records none (not a store, or one too new to have been given one).
func VersionOf(tx *bolt.Tx) uint64 {
	meta := tx.Bucket(BucketMeta)
	if meta == nil {
		return 0
	}
	v := meta.Get(KeySchema)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// BlobDir is the directory, inside a store's, that holds its photos.
const BlobDir = "blobs"

// BlobFile is where the photo whose SHA-256 is sum lies, relative to the
// store's directory: fanned out by the hash's first two digits.
func BlobFile(sum string) string {
	return filepath.Join(BlobDir, sum[:2], sum)
}
