package schema

// A backup is a tar stream, in this order:
//
//	fieldsync-backup.json      the manifest: what the snapshot holds
//	fieldsync.db               the bbolt file as one read transaction saw it
//	blobs/<sha256>             each photo the snapshot's blobs bucket lists
//	fieldsync-backup-end.json  BackupTrailer: the database's SHA-256, counts
//
// The manifest comes first so a reader can refuse a backup it cannot
// restore (a newer schema) before reading gigabytes. The trailer comes last
// and is the only proof the stream is whole: tar has no length of its own,
// and a stream cut between two entries reads as a valid, shorter archive.
// The store writes it (Store.Backup); storefile reads it (VerifyBackup,
// Restore).
const (
	BackupManifestName = "fieldsync-backup.json"
	BackupTrailerName  = "fieldsync-backup-end.json"
	BackupBlobDir      = "blobs/"
)

// BackupTrailer closes a backup: what the reader must have seen.
type BackupTrailer struct {
	DBSHA256  string `json:"db_sha256"`
	Blobs     int    `json:"blobs"`
	BlobBytes int64  `json:"blob_bytes"`
}
