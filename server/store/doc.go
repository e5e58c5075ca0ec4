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
// Layout (values are MessagePack, ordered keys big-endian uint64):
//
//	meta        schema version, incarnation id
//	log         seq -> LogEntry (op, actor, device, received_at, result)
//	warnings    warning id -> syncproto.Warning
//	external    feed external_id -> warning id
//	idx/<scope> seq -> kind, entity, id   (scope: "unit/<code>" or "user/<id>")
//	devices     device id -> Device (owner, last_client_seq, revoked)
//	results     device id + client_seq -> syncproto.Result
//	units       code -> syncproto.Unit
//	users       user id -> User; usernames: username -> id
//	unitusers   unit code + "/" + user id -> nothing (cadres of a unit)
//	refresh     SHA-256 of a refresh token -> RefreshToken
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
