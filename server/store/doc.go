// Package store is fieldsync's authoritative store: an append-only log of
// every op in a bbolt file, with the current state of each warning, the unit
// tree, users, devices, tokens and the scope indexes that make a pull cost
// what its scope changed.
//
// All writes go through one writer goroutine. It gathers the requests that
// arrive while it commits into one bbolt transaction (group commit): many
// pushes share one fsync, and nothing is answered before that fsync. A
// request function validates before it writes, so a request refused with a
// protocol error leaves nothing behind; any other error fails the whole
// transaction and every request in it.
//
// Schema upgrades (migrate.go): meta "schema" is the layout's version. Open
// refuses a store newer than SchemaVersion without writing to it, and runs
// the migrations from an older one's version up, in bounded steps that
// resume after a crash, before the writer starts. Schema 2 added
// Device.LastSeen, backfilled from each device's newest log entry.
//
// Index compaction (compact.go): CompactIndex keeps the latest entry of each
// record per scope index and drops removes older than the tombstone horizon,
// raising the scope's own horizon (bucket horizons) in the same transaction;
// a pull whose cursor is below its scope's horizon resets. Schema 3 added
// the per-scope horizons; the global one schema 2 kept in meta is no longer
// written and stays the floor of every scope's horizon.
// CompactFile rewrites the whole file, on a stopped store.
//
// Held pulls (notify.go): a pull with nothing due may wait for a change in
// its scope. The writer notes the scopes each commit writes index entries
// into and, after the commit and before answering its requests, wakes the
// pulls held on those scopes only. A held pull holds no transaction.
//
// Latest entries (latest.go): a pull sends a record only from its latest
// entry in the scope, so from a cursor to the head each record reaches a
// device once, however many pages the pull takes. indexMove records each
// record's latest entry per scope as it writes the entries; compaction
// forgets a record's once it has dropped all of its entries. Schema 4
// added bucket latest, built from the indexes by the upgrade.
//
// Layout (values are MessagePack, ordered keys big-endian uint64):
//
//	meta        schema -> schema version (uint64); incarnation -> 16 random
//	            bytes; active_kid -> the signing key's kid;
//	            tombstone_horizon -> log seq (uint64), only in a store a
//	            schema-2 compaction ran on, frozen since: removes of any scope
//	            at or below it may be gone; migrate2_next -> log seq (only
//	            while the schema 2 migration is part-way)
//	horizons    scope -> log seq (uint64): the newest remove compaction
//	            dropped from idx/<scope>; a cursor of that scope below it (or
//	            below meta tombstone_horizon) resets
//	log         seq -> LogEntry (op, actor, device, received_at, result)
//	warnings    warning id -> syncproto.Warning
//	external    feed external_id -> warning id
//	idx/<scope> seq -> kind, entity, id   (scope: "unit/<code>" or "user/<id>";
//	            after compaction, at most one entry per record)
//	latest      entity + id -> for each scope holding an entry of the
//	            record, the seq of its latest one there (latest.go)
//	devices     device id -> Device (owner, last_client_seq, revoked,
//	            last_seen: the last push, or pull as flushed by the app;
//	            session: the number its access tokens carry, and when it
//	            ends; sequence: the last session number given, devices.go)
//	userdevices user id + "/" + device id -> nothing (the devices a user
//	            signed in or refreshed from, for the cap per user)
//	results     device id + client_seq -> syncproto.Result
//	units       code -> syncproto.Unit
//	users       user id -> User; usernames: username -> id
//	unitusers   unit code + "/" + user id -> nothing (cadres of a unit)
//	refresh     SHA-256 of a refresh token -> RefreshToken (owner, chain,
//	            when it was spent and the hash of its successor)
//	keys        kid -> SigningKey (meta holds the active kid)
//	blobs       sha256 -> BlobMeta (bytes live beside the database)
//	blobrefs    sha256 + warning id -> nothing
//	history     warning id + seq -> nothing (the log entries of a warning)
//	audit       seq -> AuditEntry (who read which warning's personal data)
//	stats       unit + "/" + day -> counts of the warnings received that day
//	statshist   unit + "/" + day + kind + minute -> how many took that long
//	open        deadline + warning id -> unit and day, for open warnings
//	list        unit, 0, sort tag, time, warning id -> nothing (ordered lists)
//	summary     warning id -> what a list shows and filters on
//	toarchive   closed_at + warning id -> nothing: closed, still on the phone
//	toredact    closed_at + warning id -> nothing: archived, not yet redacted
//
// Backup streams the database as one read transaction sees it, with the
// photos it lists, as a tar closed by a trailer (backup.go); Restore makes
// a store of it with a new incarnation, so every device's cursor resets.
package store
