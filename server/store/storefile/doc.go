// Package storefile works on the files of a stopped fieldsync store, the
// operations an operator runs with the server down: restore a backup into
// a directory, verify a backup stream without restoring it, or extract it
// aside and check it through for a cluster's restore (backup.go),
// check a store's consistency (check.go), and rewrite its bbolt file
// compacted (compact.go).
//
// None of them runs beside a server: each opens the bbolt file itself, and
// bbolt's lock on it refuses them (or them the server) while a server
// holds it. The store package is the online side: it serves the store and
// takes the hot backup (Store.Backup) that Restore reads back. What both
// know of the file (bucket names, key encodings, the backup stream's
// entries) is written once, in server/store/internal/schema; what a
// restore must do through a running store (give it a new incarnation, find
// the photos its metadata names) it does through the store's methods.
package storefile
