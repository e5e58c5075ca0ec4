// Package store is fieldsync's authoritative store: an append-only log of
// every op in a bbolt file, with the current state of each warning, the unit
// tree, users, devices, tokens and the scope indexes that make a pull cost
// what its scope changed.
//
// All writes go through one writer goroutine. It gathers the requests that
// arrive while it commits into one bbolt transaction (group commit): many
// pushes share one fsync, and nothing is answered before that fsync. A
// request is a command (command.go): a value holding everything its apply
// needs (the writer's clock reading, the ids it writes, its principal, the
// policies it applies), so it applies the same way on any machine. A
// command's apply validates before it writes, so a request refused with a
// protocol error leaves nothing behind; any other error fails the whole
// transaction and every request in it. The transaction also records the
// group's index (meta "applied_index"). With Options.Replicate set, a
// group goes out as one encoded entry and comes back through ApplyEntry,
// as every node of a cluster applies it (docs/CLUSTER.md).
//
// Files. The write path, and what the store does around it, is every file
// without a prefix: store.go (open, the writer and its group commit),
// command.go (commands, entries, ApplyEntry),
// push.go (and replay.go, pushes at times of their own for a seeded
// history), feed.go, directory.go and users.go (units and users), auth.go,
// devices.go, lastseen.go and keys.go (sign-in, sessions, devices, signing
// keys), blobs.go and photos.go, retention.go, index.go and latest.go (the
// scope indexes and each record's latest entry in them), compact.go (index
// compaction), migrate.go (schema upgrades), attempts.go (a warning stored
// as its state and its attempts apart), warningkeys.go (a warning's
// attempts, history and latest entries beside its state: every reader and
// writer of them goes through it) and cache.go (the decoded warnings),
// records.go (what is stored), backup.go (the hot backup), notify.go (the
// pulls held until the writer wakes them), logread.go (the log for tools),
// sizes.go (what each bucket holds, for load tools), ready.go (the
// readiness probe). The read models are the read_ files: read_stats.go
// (statistics), read_list.go (lists, filtered on the warnings' states),
// read_history.go (a warning's history, the audit of reads),
// read_feedback.go (outcomes for the national platform) and read_pull.go
// (the pull). Each read model owns its buckets: the write path calls its
// upkeep (updateStats, updateList, addHistory) inside the transaction that
// changes a warning, and its queries read them in read transactions.
//
// The read models are a group of files, not a package of their own,
// because they read through the store's insides, not only its buckets: the
// cache of decoded warnings the writer fills, the held pulls it wakes, the
// incarnation in every cursor, the audit entries they write through the
// writer, and their upkeep runs inside the writer's transaction. A package
// would need all of that exported, and the bbolt transaction with it.
//
// Schema upgrades (migrate.go): meta "schema" is the layout's version. Open
// refuses a store newer than SchemaVersion without writing to it, and runs
// the migrations from an older one's version up, in bounded steps that
// resume after a crash, before the writer starts. Schema 2 added
// Device.LastSeen, backfilled from each device's newest log entry; schema 7
// moved each warning's attempts out of its state into records of their own
// and dropped the lists' summaries; schema 8 moved its attempts, history
// and latest entries into bucket warnings beside its state, so that an op
// dirties one page where it dirtied four; schema 9 keeps list indexes only
// in a warning's unit and its township, which the lists above merge;
// schema 12 writes log entries and push results in a compact form, less
// than half the bytes, beside the older values, which stay (logcodec.go);
// schema 13 writes attempt records in that form too (attemptcodec.go);
// schema 14 warning states (statecodec.go); schema 15 rebuilds the list
// indexes without the villages' (a village's list is its township's) and
// with ids as 16 bytes; schema 16 keeps a warning's history in one record
// and writes latest values, histogram counts and the open warnings' keys
// compactly; schema 17 keeps each unit's day's histogram in one record,
// not a key a minute (hist.go); schema 18 writes the commonest strings of
// compact values (entry types, statuses, methods, outcomes, fraud types)
// as one-byte words (words.go; docs/COMPACTION.md lists them all). Every
// write transaction
// sets each bucket's page fill (schema.SetFill): most keys arrive in
// order, and bbolt's default of half leaves their pages half empty.
//
// Index compaction (compact.go): CompactIndex keeps the latest entry of each
// record per scope index and drops removes older than the tombstone horizon,
// raising the scope's own horizon (bucket horizons) in the same transaction;
// a pull whose cursor is below its scope's horizon resets. Schema 3 added
// the per-scope horizons; the global one schema 2 kept in meta is no longer
// written and stays the floor of every scope's horizon.
// Rewriting the whole file compacted is storefile.Compact's, on a stopped
// store.
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
// added bucket latest, built from the indexes by the upgrade; schema 8
// moved a warning's beside its state.
//
// Layout: the buckets, their keys and values, and where the photos lie are
// written once, in internal/schema, which this package and storefile both
// read.
//
// Backup streams the database as one read transaction sees it, with the
// photos it lists, as a tar closed by a trailer (backup.go): the one file
// operation that runs beside a server. What needs the server stopped
// (restoring a backup, which makes a store of it with a new incarnation so
// every device's cursor resets; verifying one; the consistency check;
// compacting the file) is package storefile's, which this package does
// not import.
package store
