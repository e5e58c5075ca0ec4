package storefile

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
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fieldsync/fieldsync/internal/durable"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// maxBackupJSONLength bounds the manifest and the trailer a reader takes.
const maxBackupJSONLength = 64 << 10

// ErrIncompleteBackup means a backup stream ended before its trailer: it
// was cut short in transfer or on disk, and must not be restored.
var ErrIncompleteBackup = errors.New("the backup is incomplete: it ends before its trailer (cut short in transfer or on disk?)")

// ErrStoreExists is returned by Restore when the target directory is not
// empty and RestoreOptions.Replace is not set.
var ErrStoreExists = errors.New("the target directory is not empty")

// VerifyBackup reads a whole backup stream and checks it as Restore would,
// without writing anything: the manifest, the database's length and
// SHA-256, every photo's SHA-256, and the trailer at the end.
func VerifyBackup(r io.Reader) (*store.BackupInfo, error) {
	return readBackup(r, "")
}

// readBackup reads a backup stream, extracting it into dir unless dir is
// empty, and checks everything the stream can prove about itself.
func readBackup(r io.Reader, dir string) (*store.BackupInfo, error) {
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
	if h.Name != schema.BackupManifestName {
		return nil, fmt.Errorf("read backup: this is not a fieldsync backup (its first entry is %q, not %s)", h.Name, schema.BackupManifestName)
	}
	info := &store.BackupInfo{}
	if err := readJSONEntry(tr, h, &info.BackupManifest); err != nil {
		return nil, fmt.Errorf("read backup manifest: %w", err)
	}
	m := &info.BackupManifest
	switch {
	case m.Format != store.BackupFormat:
		return nil, fmt.Errorf("read backup: format %d; this fieldsyncd reads format %d", m.Format, store.BackupFormat)
	case m.SchemaVersion > store.SchemaVersion:
		return nil, fmt.Errorf("read backup: the store in it has schema version %d, newer than this fieldsyncd understands (%d): restore it with a newer fieldsyncd", m.SchemaVersion, store.SchemaVersion)
	}

	if h, err = next(); err != nil {
		return nil, err
	}
	if h.Name != store.DBFile || h.Size != m.DBBytes {
		return nil, fmt.Errorf("read backup: expected %s of %d bytes, found %q of %d", store.DBFile, m.DBBytes, h.Name, h.Size)
	}
	dbHash := sha256.New()
	if err := extract(tr, h.Size, dir, store.DBFile, dbHash); err != nil {
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
		if h.Name == schema.BackupTrailerName {
			break
		}
		sum, ok := strings.CutPrefix(h.Name, schema.BackupBlobDir)
		if !ok || !syncproto.ValidSHA256(sum) || seen[sum] {
			return nil, fmt.Errorf("read backup: unexpected entry %q", h.Name)
		}
		seen[sum] = true
		blobHash := sha256.New()
		if err := extract(tr, h.Size, dir, schema.BlobFile(sum), blobHash); err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(blobHash.Sum(nil)); got != sum {
			return nil, fmt.Errorf("read backup: photo %s is damaged: its bytes hash to %s", sum, got)
		}
		blobs++
		blobBytes += h.Size
	}
	var t schema.BackupTrailer
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
	Backup store.BackupInfo
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
		if _, err := os.Stat(filepath.Join(dir, store.DBFile)); err == nil {
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
	path := filepath.Join(dir, store.DBFile)
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
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return "", fmt.Errorf("restore: open the restored store: %w", err)
	}
	defer st.Close()
	missing, err := st.MissingPhotoFiles()
	if err != nil {
		return "", fmt.Errorf("restore: list photos: %w", err)
	}
	if len(missing) > 0 {
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

// CheckBackup reads a backup stream into scratch (a directory that must
// not exist yet; the caller removes it) and checks everything a store
// installed from it needs, for a cluster's restore (server/cluster),
// which cannot fail half-way once raft has taken the backup: what
// VerifyBackup checks, then that the store has this binary's schema (a
// cluster's nodes install it as it is, with no migration), that every
// photo its blobs bucket lists is in the backup, and Check's consistency.
func CheckBackup(r io.Reader, scratch string) (*store.BackupInfo, error) {
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("check backup: %w", err)
	}
	info, err := readBackup(r, scratch)
	if err != nil {
		return nil, err
	}
	if info.SchemaVersion != store.SchemaVersion {
		return nil, fmt.Errorf("check backup: its store has schema version %d, this fieldsyncd %d: restore it on one server with this fieldsyncd (which migrates it), back that up, and restore that backup", info.SchemaVersion, store.SchemaVersion)
	}
	st, err := store.Open(scratch, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("check backup: open its store: %w", err)
	}
	missing, err := st.MissingPhotoFiles()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("check backup: list photos: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("check backup: %d photos its store lists are not in it, the first %s", len(missing), missing[0])
	}
	rep, err := Check(scratch)
	if err != nil {
		return nil, fmt.Errorf("check backup: %w", err)
	}
	if n := len(rep.Problems); n > 0 {
		return nil, fmt.Errorf("check backup: its store has %d problems, the first: %s", n, rep.Problems[0])
	}
	return info, nil
}
