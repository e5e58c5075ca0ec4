package store

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// BackupFormat is the version of the backup stream's layout
// (schema/backup.go), in its manifest.
const BackupFormat = 1

// BackupManifest describes a backup; it is the first entry of the stream.
type BackupManifest struct {
	Format        int       `json:"format"`
	SchemaVersion uint64    `json:"schema_version"`
	Incarnation   string    `json:"incarnation"`
	LastSeq       uint64    `json:"last_seq"`
	TakenAt       time.Time `json:"taken_at"`
	DBBytes       int64     `json:"db_bytes"`
	Warnings      int       `json:"warnings"`
	Units         int       `json:"units"`
	Users         int       `json:"users"`
	Devices       int       `json:"devices"`
	Blobs         int       `json:"blobs"`
	BlobBytes     int64     `json:"blob_bytes"`
}

// BackupInfo is what Backup wrote, or what storefile.VerifyBackup read.
type BackupInfo struct {
	BackupManifest
	// Bytes is the length of the whole stream.
	Bytes    int64  `json:"bytes"`
	DBSHA256 string `json:"db_sha256"`
}

// Backup writes a consistent copy of the running store to w: the database
// as one read transaction sees it (writers go on meanwhile) and every photo
// that snapshot lists. An error before anything reached w leaves w
// untouched; an error after means w holds an incomplete stream, which any
// reader refuses for want of its trailer.
//
// The database is first copied to a temporary file beside it, which needs
// free disk space of the database's size for the length of the backup.
func (s *Store) Backup(ctx context.Context, w io.Writer) (*BackupInfo, error) {
	// The sweep of unreferenced photos deletes none while the backup
	// copies them.
	s.photoFiles.RLock()
	defer s.photoFiles.RUnlock()
	m, blobs, spool, err := s.snapshot()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer spool.close()
	// Photos are written to disk (and fsynced) before their metadata
	// commits, and deleted only by the sweep held off above, so every one
	// the snapshot lists is there; check all the same, before the first
	// byte, so a missing file is a clean error.
	for _, b := range blobs {
		fi, err := os.Stat(s.blobPath(b.SHA256))
		if err != nil {
			return nil, fmt.Errorf("backup: photo %s: %w", b.SHA256, err)
		}
		if fi.Size() != b.Size {
			return nil, fmt.Errorf("backup: photo %s has %d bytes on disk, %d in the store", b.SHA256, fi.Size(), b.Size)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	info := &BackupInfo{BackupManifest: *m}
	if err := writeJSONEntry(tw, schema.BackupManifestName, m.TakenAt, m); err != nil {
		return info, fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: DBFile, Mode: 0o600, Size: m.DBBytes, ModTime: m.TakenAt, Typeflag: tar.TypeReg}); err != nil {
		return info, fmt.Errorf("backup: database header: %w", err)
	}
	dbHash := sha256.New()
	if n, err := io.Copy(io.MultiWriter(tw, dbHash), io.LimitReader(spool.f, m.DBBytes)); err != nil {
		return info, fmt.Errorf("backup: database: %w", err)
	} else if n != m.DBBytes {
		return info, fmt.Errorf("backup: the database copy has %d bytes, not %d", n, m.DBBytes)
	}
	info.DBSHA256 = hex.EncodeToString(dbHash.Sum(nil))
	for _, b := range blobs {
		if err := ctx.Err(); err != nil {
			return info, fmt.Errorf("backup: %w", err)
		}
		if err := s.backupBlob(tw, b, m.TakenAt); err != nil {
			return info, fmt.Errorf("backup: photo %s: %w", b.SHA256, err)
		}
	}
	trailer := schema.BackupTrailer{DBSHA256: info.DBSHA256, Blobs: m.Blobs, BlobBytes: m.BlobBytes}
	if err := writeJSONEntry(tw, schema.BackupTrailerName, m.TakenAt, trailer); err != nil {
		return info, fmt.Errorf("backup: trailer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	info.Bytes = cw.n
	return info, nil
}

// snapshot copies the database as one read transaction sees it into a
// temporary file beside it, describes it, and lists its photos. The read
// transaction lasts only as long as that local copy, not as long as the
// client takes to download the backup: while it is open bbolt reuses no
// page freed since, and a commit that must grow the file's memory map
// waits for it to end, so a slow download would stall every push.
func (s *Store) snapshot() (*BackupManifest, []BlobMeta, *spoolFile, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin read transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	m, blobs, err := s.backupManifest(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := os.CreateTemp(s.dir, ".backup-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create the database copy: %w", err)
	}
	// Unlinked at once where the system allows it, so a crash leaves
	// nothing behind.
	spool := &spoolFile{f: f, unlinked: os.Remove(f.Name()) == nil}
	n, err := tx.WriteTo(f)
	if err == nil && n != m.DBBytes {
		err = fmt.Errorf("wrote %d bytes, not %d", n, m.DBBytes)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		spool.close()
		return nil, nil, nil, fmt.Errorf("copy the database: %w", err)
	}
	return m, blobs, spool, nil
}

type spoolFile struct {
	f        *os.File
	unlinked bool
}

func (s *spoolFile) close() {
	s.f.Close()
	if !s.unlinked {
		os.Remove(s.f.Name())
	}
}

// backupManifest describes the snapshot tx sees and lists its photos.
func (s *Store) backupManifest(tx *bolt.Tx) (*BackupManifest, []BlobMeta, error) {
	meta := tx.Bucket(schema.BucketMeta)
	m := &BackupManifest{
		Format:      BackupFormat,
		Incarnation: hex.EncodeToString(meta.Get(schema.KeyIncarnation)),
		LastSeq:     tx.Bucket(schema.BucketLog).Sequence(),
		TakenAt:     s.now().UTC(),
		DBBytes:     tx.Size(),
		Warnings:    schema.CountWarnings(tx.Bucket(schema.BucketWarnings)),
		Units:       tx.Bucket(schema.BucketUnits).Stats().KeyN,
		Users:       tx.Bucket(schema.BucketUsers).Stats().KeyN,
		Devices:     tx.Bucket(schema.BucketDevices).Stats().KeyN,
	}
	m.SchemaVersion = schema.VersionOf(tx)
	var blobs []BlobMeta
	err := forEachRecord(tx.Bucket(schema.BucketBlobs), func(k []byte, b *BlobMeta) error {
		if !syncproto.ValidSHA256(string(k)) {
			return fmt.Errorf("the blobs bucket holds a bad key %q", k)
		}
		b.SHA256 = string(k)
		blobs = append(blobs, *b)
		m.BlobBytes += b.Size
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list photos: %w", err)
	}
	m.Blobs = len(blobs)
	return m, blobs, nil
}

// backupBlob copies one photo into the stream, checking its hash on the
// way: a photo damaged on disk fails the backup here, with its name,
// rather than the restore later.
func (s *Store) backupBlob(tw *tar.Writer, b BlobMeta, at time.Time) error {
	f, err := os.Open(s.blobPath(b.SHA256))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: schema.BackupBlobDir + b.SHA256, Mode: 0o600, Size: b.Size, ModTime: at, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, b.Size))
	if err != nil {
		return err
	}
	if n != b.Size {
		return fmt.Errorf("the file ended after %d of %d bytes", n, b.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 {
		return fmt.Errorf("the file on disk is damaged: its SHA-256 is %s", got)
	}
	return nil
}

func writeJSONEntry(tw *tar.Writer, name string, at time.Time, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: at, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
