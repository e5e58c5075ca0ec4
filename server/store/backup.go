package store

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fieldsync/fieldsync/internal/durable"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A backup is a tar stream, in this order:
//
//	fieldsync-backup.json      BackupManifest: what the snapshot holds
//	fieldsync.db               the bbolt file as one read transaction saw it
//	blobs/<sha256>             each photo the snapshot's blobs bucket lists
//	fieldsync-backup-end.json  backupTrailer: the database's SHA-256, counts
//
// The manifest comes first so a reader can refuse a backup it cannot
// restore (a newer schema) before reading gigabytes. The trailer comes last
// and is the only proof the stream is whole: tar has no length of its own,
// and a stream cut between two entries reads as a valid, shorter archive.
const (
	BackupFormat        = 1
	backupManifestName  = "fieldsync-backup.json"
	backupTrailerName   = "fieldsync-backup-end.json"
	backupBlobDir       = "blobs/"
	maxBackupJSONLength = 64 << 10
)

// ErrIncompleteBackup means a backup stream ended before its trailer: it
// was cut short in transfer or on disk, and must not be restored.
var ErrIncompleteBackup = errors.New("the backup is incomplete: it ends before its trailer (cut short in transfer or on disk?)")

// ErrStoreExists is returned by Restore when the target directory is not
// empty and RestoreOptions.Replace is not set.
var ErrStoreExists = errors.New("the target directory is not empty")

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

// backupTrailer closes a backup: what the reader must have seen.
type backupTrailer struct {
	DBSHA256  string `json:"db_sha256"`
	Blobs     int    `json:"blobs"`
	BlobBytes int64  `json:"blob_bytes"`
}

// BackupInfo is what Backup wrote, or what VerifyBackup read.
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
	if err := writeJSONEntry(tw, backupManifestName, m.TakenAt, m); err != nil {
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
	trailer := backupTrailer{DBSHA256: info.DBSHA256, Blobs: m.Blobs, BlobBytes: m.BlobBytes}
	if err := writeJSONEntry(tw, backupTrailerName, m.TakenAt, trailer); err != nil {
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
		Warnings:    tx.Bucket(schema.BucketWarnings).Stats().KeyN,
		Units:       tx.Bucket(schema.BucketUnits).Stats().KeyN,
		Users:       tx.Bucket(schema.BucketUsers).Stats().KeyN,
		Devices:     tx.Bucket(schema.BucketDevices).Stats().KeyN,
	}
	m.SchemaVersion = schema.VersionOf(tx)
	var blobs []BlobMeta
	err := tx.Bucket(schema.BucketBlobs).ForEach(func(k, v []byte) error {
		var b BlobMeta
		if err := decode(v, &b); err != nil {
			return err
		}
		if !syncproto.ValidSHA256(string(k)) {
			return fmt.Errorf("the blobs bucket holds a bad key %q", k)
		}
		b.SHA256 = string(k)
		blobs = append(blobs, b)
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
	if err := tw.WriteHeader(&tar.Header{Name: backupBlobDir + b.SHA256, Mode: 0o600, Size: b.Size, ModTime: at, Typeflag: tar.TypeReg}); err != nil {
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

// VerifyBackup reads a whole backup stream and checks it as Restore would,
// without writing anything: the manifest, the database's length and
// SHA-256, every photo's SHA-256, and the trailer at the end.
func VerifyBackup(r io.Reader) (*BackupInfo, error) {
	return readBackup(r, "")
}

// readBackup reads a backup stream, extracting it into dir unless dir is
// empty, and checks everything the stream can prove about itself.
func readBackup(r io.Reader, dir string) (*BackupInfo, error) {
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	next := func() (*tar.Header, error) {
		h, err := tr.Next()
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, ErrIncompleteBackup
		case err != nil:
			return nil, fmt.Errorf("read backup: %w", err)
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("read backup: unexpected entry %q of type %q", h.Name, h.Typeflag)
		}
		return h, nil
	}

	h, err := next()
	if errors.Is(err, ErrIncompleteBackup) && cr.n == 0 {
		return nil, errors.New("read backup: the stream is empty")
	}
	if err != nil {
		return nil, err
	}
	if h.Name != backupManifestName {
		return nil, fmt.Errorf("read backup: this is not a fieldsync backup (its first entry is %q, not %s)", h.Name, backupManifestName)
	}
	info := &BackupInfo{}
	if err := readJSONEntry(tr, h, &info.BackupManifest); err != nil {
		return nil, fmt.Errorf("read backup manifest: %w", err)
	}
	m := &info.BackupManifest
	switch {
	case m.Format != BackupFormat:
		return nil, fmt.Errorf("read backup: format %d; this fieldsyncd reads format %d", m.Format, BackupFormat)
	case m.SchemaVersion > SchemaVersion:
		return nil, fmt.Errorf("read backup: the store in it has schema version %d, newer than this fieldsyncd understands (%d): restore it with a newer fieldsyncd", m.SchemaVersion, SchemaVersion)
	}

	if h, err = next(); err != nil {
		return nil, err
	}
	if h.Name != DBFile || h.Size != m.DBBytes {
		return nil, fmt.Errorf("read backup: expected %s of %d bytes, found %q of %d", DBFile, m.DBBytes, h.Name, h.Size)
	}
	dbHash := sha256.New()
	if err := extract(tr, h.Size, dir, DBFile, dbHash); err != nil {
		return nil, err
	}
	info.DBSHA256 = hex.EncodeToString(dbHash.Sum(nil))

	var blobs int
	var blobBytes int64
	seen := map[string]bool{}
	for {
		if h, err = next(); err != nil {
			return nil, err
		}
		if h.Name == backupTrailerName {
			break
		}
		sum, ok := strings.CutPrefix(h.Name, backupBlobDir)
		if !ok || !syncproto.ValidSHA256(sum) || seen[sum] {
			return nil, fmt.Errorf("read backup: unexpected entry %q", h.Name)
		}
		seen[sum] = true
		blobHash := sha256.New()
		if err := extract(tr, h.Size, dir, filepath.Join("blobs", sum[:2], sum), blobHash); err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(blobHash.Sum(nil)); got != sum {
			return nil, fmt.Errorf("read backup: photo %s is damaged: its bytes hash to %s", sum, got)
		}
		blobs++
		blobBytes += h.Size
	}
	var t backupTrailer
	if err := readJSONEntry(tr, h, &t); err != nil {
		return nil, fmt.Errorf("read backup trailer: %w", err)
	}
	switch {
	case t.DBSHA256 != info.DBSHA256:
		return nil, fmt.Errorf("read backup: the database is damaged: its SHA-256 is %s, the trailer says %s", info.DBSHA256, t.DBSHA256)
	case t.Blobs != blobs || t.Blobs != m.Blobs || t.BlobBytes != blobBytes || t.BlobBytes != m.BlobBytes:
		return nil, fmt.Errorf("read backup: %d photos of %d bytes, the backup lists %d of %d", blobs, blobBytes, m.Blobs, m.BlobBytes)
	}
	// Nothing may follow the trailer but its padding and tar's two
	// end-of-archive blocks, and they must be there: the reader stops
	// quietly at a stream cut short among them.
	end := (cr.n+511)/512*512 + 1024
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("an entry follows the trailer")
		}
		return nil, fmt.Errorf("read backup: after the trailer: %w", err)
	}
	if cr.n != end {
		return nil, ErrIncompleteBackup
	}
	info.Bytes = cr.n
	return info, nil
}

func readJSONEntry(tr *tar.Reader, h *tar.Header, v any) error {
	if h.Size > maxBackupJSONLength {
		return fmt.Errorf("%s is %d bytes long", h.Name, h.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return incomplete(err)
	}
	return json.Unmarshal(data, v)
}

// extract copies an entry's size bytes through h into dir/name (fsynced),
// or only through h when dir is empty.
func extract(tr *tar.Reader, size int64, dir, name string, h hash.Hash) error {
	if dir == "" {
		n, err := io.Copy(h, tr)
		if err == nil && n != size {
			err = io.ErrUnexpectedEOF
		}
		return incomplete(err)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(io.MultiWriter(f, h), tr)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return incomplete(err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("restore: sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore: close %s: %w", name, err)
	}
	return nil
}

// incomplete turns the end of a cut stream into ErrIncompleteBackup.
func incomplete(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrIncompleteBackup
	}
	if err != nil {
		return fmt.Errorf("read backup: %w", err)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Replace lets Restore take the place of a store (or anything else)
	// already in the directory; the old one is moved aside, never deleted.
	Replace bool
}

// RestoreInfo is what Restore did.
type RestoreInfo struct {
	// Backup is the backup restored.
	Backup BackupInfo
	// Incarnation is the restored store's new incarnation id (hex):
	// every device's cursor resets at its next sync.
	Incarnation string
	// MovedAside is where the directory's previous content went, if any.
	MovedAside string
	// Check is the consistency check of the restored store.
	Check *CheckReport
}

// Restore extracts a backup into dir, for a stopped server. The stream is
// extracted and verified (lengths, every SHA-256, the trailer) in a new
// directory beside dir, fsynced, given a new incarnation (devices' cursors
// made before the restore must reset: its log may be behind what they
// pulled) and checked with Check; only then does it take dir's place. A
// bad or cut stream leaves dir untouched. A dir that is not empty is
// refused with ErrStoreExists unless opts.Replace is set, and then moved
// aside, not deleted.
func Restore(ctx context.Context, from io.Reader, dir string, opts RestoreOptions) (*RestoreInfo, error) {
	dir = filepath.Clean(dir)
	empty, err := emptyOrMissing(dir)
	if err != nil {
		return nil, err
	}
	if !empty && !opts.Replace {
		what := "files"
		if _, err := os.Stat(filepath.Join(dir, DBFile)); err == nil {
			what = "a store"
		}
		return nil, fmt.Errorf("%w: %s holds %s; restore into an empty directory, or replace it", ErrStoreExists, dir, what)
	}
	// A server serving the store holds bbolt's lock on its file: moving
	// the directory from under it would let it go on acknowledging pushes
	// into a file nobody reads again. The lock taken here also keeps a
	// server from starting on the old store until the new one is in place.
	unlock, err := lockStopped(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	staging, err := os.MkdirTemp(parent, filepath.Base(dir)+".restoring-")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(staging)
		}
	}()
	info := &RestoreInfo{}
	backup, err := readBackup(from, staging)
	if err != nil {
		return nil, err
	}
	info.Backup = *backup
	if err := syncDirs(staging); err != nil {
		return nil, err
	}
	if info.Incarnation, err = renewRestored(ctx, staging); err != nil {
		return nil, err
	}
	if info.Check, err = Check(staging); err != nil {
		return nil, fmt.Errorf("restore: check: %w", err)
	}
	if n := len(info.Check.Problems); n > 0 {
		return nil, fmt.Errorf("restore: the restored store has %d problems, the first: %s", n, info.Check.Problems[0])
	}
	if !empty {
		info.MovedAside = fmt.Sprintf("%s.before-restore-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(dir, info.MovedAside); err != nil {
			return nil, fmt.Errorf("restore: move the old store aside: %w", err)
		}
	} else if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(staging, dir); err != nil {
		// The verified store stays where it is, for a rename by hand.
		done = true
		if info.MovedAside != "" {
			return nil, fmt.Errorf("restore: the old store was moved to %s, and moving the restored store from %s into place failed: %w", info.MovedAside, staging, err)
		}
		return nil, fmt.Errorf("restore: moving the restored store from %s into place failed: %w", staging, err)
	}
	done = true
	if err := durable.Sync(parent); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return info, nil
}

// ErrStoreInUse is returned by Restore when a running server holds the
// store it would replace.
var ErrStoreInUse = errors.New("a running fieldsyncd holds the store; stop it first")

// lockStopped takes a shared lock on dir's store file, if there is one, and
// fails with ErrStoreInUse while a server holds it. A file bbolt cannot
// read is no one's store: restoring over it is what a restore is for.
func lockStopped(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return func() {}, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("restore into %s: %w", dir, ErrStoreInUse)
	case err != nil:
		return func() {}, nil
	}
	return func() { db.Close() }, nil
}

// renewRestored opens the extracted store, checks that every photo its
// blobs bucket lists is there, and gives it a new incarnation.
func renewRestored(ctx context.Context, dir string) (string, error) {
	st, err := Open(dir, Options{})
	if err != nil {
		return "", fmt.Errorf("restore: open the restored store: %w", err)
	}
	defer st.Close()
	var missing []string
	err = st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(schema.BucketBlobs).ForEach(func(k, v []byte) error {
			var b BlobMeta
			if err := decode(v, &b); err != nil {
				return err
			}
			if fi, err := os.Stat(st.blobPath(string(k))); err != nil || fi.Size() != b.Size {
				missing = append(missing, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return "", fmt.Errorf("restore: list photos: %w", err)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("restore: %d photos the store lists are not in the backup, the first %s", len(missing), missing[0])
	}
	if err := st.NewIncarnation(ctx); err != nil {
		return "", fmt.Errorf("restore: new incarnation: %w", err)
	}
	inc := st.Incarnation()
	if err := st.Close(); err != nil {
		return "", fmt.Errorf("restore: close the restored store: %w", err)
	}
	return hex.EncodeToString(inc[:]), nil
}

// emptyOrMissing reports whether dir is absent or an empty directory.
func emptyOrMissing(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %s: %w", dir, err)
	}
	return len(names) == 0, nil
}

// syncDirs fsyncs dir and every directory below it, deepest first, so the
// names of the files just written are durable too.
func syncDirs(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := durable.Sync(dirs[i]); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}
