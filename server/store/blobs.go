package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

func (s *Store) blobPath(sum string) string {
	return filepath.Join(s.dir, schema.BlobFile(sum))
}

// PutBlob stores a photo under its SHA-256. The bytes are checked against
// sum and written to disk (fsynced) before the metadata commits; sending
// the same photo again is a no-op. At most syncproto.MaxBlobBytes.
func (s *Store) PutBlob(ctx context.Context, actor syncproto.Actor, sum, contentType string, r io.Reader) (*BlobMeta, error) {
	meta, err := s.BlobMeta(sum)
	if err != nil {
		return nil, err
	}
	if meta != nil {
		// The body is checked all the same: an answer must not tell
		// whether a photo exists to someone who does not hold its bytes.
		if _, err := checkBlob(sum, r); err != nil {
			return nil, err
		}
		return meta, nil
	}
	dir := filepath.Dir(s.blobPath(sum))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := checkBlob(sum, io.TeeReader(r, tmp))
	if err != nil {
		return nil, err
	}
	return s.commitBlob(ctx, actor, sum, contentType, tmp, n)
}

// PutBlobFile stores the finished file at path as the photo sum, as PutBlob
// stores a body: for resumable uploads, whose bytes arrived over several
// requests into a file of their own. The file must be on the store's file
// system (its uploads directory is): it is checked against sum, fsynced and
// renamed into place, so the photo appears whole or not at all. When the
// store already holds the photo the file is checked all the same and left
// where it is, for the caller to delete; so is a file that fails the
// check (invalid_request, or payload_too_large past
// syncproto.MaxBlobBytes).
func (s *Store) PutBlobFile(ctx context.Context, actor syncproto.Actor, sum, contentType, path string) (*BlobMeta, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open uploaded blob: %w", err)
	}
	defer f.Close()
	n, err := checkBlob(sum, f)
	if err != nil {
		return nil, err
	}
	if meta, err := s.BlobMeta(sum); err != nil || meta != nil {
		return meta, err
	}
	if err := os.MkdirAll(filepath.Dir(s.blobPath(sum)), 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return s.commitBlob(ctx, actor, sum, contentType, f, n)
}

// checkBlob reads a photo's bytes to their end and checks their length and
// SHA-256 against sum; it returns how many there were.
func checkBlob(sum string, r io.Reader) (int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, syncproto.MaxBlobBytes+1))
	if err != nil {
		return n, fmt.Errorf("receive blob: %w", err)
	}
	if n > syncproto.MaxBlobBytes {
		return n, syncproto.Errorf(syncproto.CodePayloadTooLarge, "a photo may be at most %d bytes", syncproto.MaxBlobBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return n, syncproto.InvalidField("sha256", "the body's SHA-256 is %s, not the %s in the path", got, sum)
	}
	return n, nil
}

// commitBlob is the one way a photo enters the store: f, holding its n
// checked bytes, is fsynced, then renamed into place and its metadata
// written in one turn of the writer, which also counts it against the
// device's photo quota (photo_quota_exceeded past it, and nothing is
// kept); the warnings that name the photo are announced again. A
// concurrent commit of the same photo leaves one copy and one record, and
// is not counted. On a node of a cluster the file first goes to the other
// nodes (Options.ReplicatePhoto): its metadata is committed only once a
// majority holds it.
func (s *Store) commitBlob(ctx context.Context, actor syncproto.Actor, sum, contentType string, f *os.File, n int64) (*BlobMeta, error) {
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close blob: %w", err)
	}
	path := filepath.Clean(f.Name())
	if s.replicatePhoto != nil {
		if err := s.replicatePhoto(ctx, sum, path, n); err != nil {
			return nil, err
		}
	}
	s.stage(path)
	defer s.unstage(path)
	meta := &BlobMeta{SHA256: sum, Size: n, ContentType: contentType, UploadedBy: actor.UserID, Created: s.now().UTC()}
	if _, err := s.write(ctx, &blobCmd{Actor: principalOf(actor), Meta: *meta, Staged: s.stagedName(path), Quota: s.photoQuota}); err != nil {
		return nil, err
	}
	return meta, nil
}

// stage and unstage mark path as a staged photo file of this store's
// while its command is on its way, so that its apply renames it; isStaged
// tells.
func (s *Store) stage(path string) {
	s.stagedMu.Lock()
	s.staged[path] = struct{}{}
	s.stagedMu.Unlock()
}

func (s *Store) unstage(path string) {
	s.stagedMu.Lock()
	delete(s.staged, path)
	s.stagedMu.Unlock()
}

func (s *Store) isStaged(path string) bool {
	s.stagedMu.Lock()
	defer s.stagedMu.Unlock()
	_, ok := s.staged[path]
	return ok
}

// stagedName is a staged file's name in a command: relative to the
// store's directory, which holds the blobs' and the uploads' directories,
// since every node's directory is another (on one machine too, as in the
// tests). A file outside it keeps its absolute path.
func (s *Store) stagedName(path string) string {
	rel, err := filepath.Rel(s.dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		return path
	}
	return filepath.ToSlash(rel)
}

// stagedPath is where a command's staged file is on this node: an
// absolute name (written before names were relative) as it is.
func (s *Store) stagedPath(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(s.dir, filepath.FromSlash(name))
}

// blobCmd stores a photo's metadata and counts it against its device's
// quota. Staged names the file of the photo that the node that received
// it staged, checked and fsynced, relative to its store's directory: that
// node renames it into place in the same turn. Any other node (in a
// cluster) stores the metadata all the same and renames nothing, even
// where a file of that name exists (another node's, on a shared disk):
// its file of the photo is the one ReplicatePhoto sent it, or missing
// until it is fetched (docs/CLUSTER.md).
type blobCmd struct {
	Actor  principal `json:"actor"`
	Meta   BlobMeta  `json:"meta"`
	Staged string    `json:"staged"`
	Quota  int64     `json:"quota"`
}

func (*blobCmd) kind() cmdKind { return cmdPutBlob }

func (c *blobCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	sum := c.Meta.SHA256
	if tx.Bucket(schema.BucketBlobs).Get([]byte(sum)) != nil {
		return nil, nil // a concurrent upload of the same photo won
	}
	if err := chargePhoto(tx, c.Actor.DeviceID, c.Meta.Size, c.Meta.Created, c.Quota); err != nil {
		return nil, err
	}
	// A group the writer applies itself (one node) is this store's own;
	// an entry of the log is when this store staged its file.
	staged := s.stagedPath(c.Staged)
	mine := !s.fromLog || s.isStaged(staged)
	if mine {
		// Renamed here, in the writer's turn, so that no sweep of
		// unreferenced photos removes the file between its rename and its
		// metadata; still before the metadata commits, so the metadata
		// never names a missing file on the node that received it. A
		// single node fails the upload when the file it was sent is gone.
		if err := os.Rename(staged, s.blobPath(sum)); err != nil && !(s.fromLog && errors.Is(err, os.ErrNotExist)) {
			return nil, fmt.Errorf("store blob: %w", err)
		}
	} else if s.photoMissing != nil {
		s.afterCommit = append(s.afterCommit, func() {
			if _, err := os.Stat(s.blobPath(sum)); err != nil {
				s.photoMissing(sum)
			}
		})
	}
	delete(s.unlink, sum)
	if err := put(tx.Bucket(schema.BucketBlobs), []byte(sum), &c.Meta); err != nil {
		return nil, err
	}
	return nil, s.announcePhoto(tx, sum, c.Actor.actor(), c.Meta.Created)
}

// EntryPhoto logs a photo's arrival for a warning whose attempt names it.
const EntryPhoto = "photo.received"

// announcePhoto puts each warning that names the photo into its scopes again,
// so devices pull it with the photo no longer missing.
func (s *Store) announcePhoto(tx *bolt.Tx, sum string, actor syncproto.Actor, now time.Time) error {
	c := tx.Bucket(schema.BucketBlobRefs).Cursor()
	prefix := []byte(sum)
	var ids []string
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	for _, id := range ids {
		w, err := s.loadWarning(tx, id)
		if err != nil || w == nil {
			return err
		}
		seq, err := appendLog(tx, &LogEntry{Type: EntryPhoto, EntityID: id, ActorID: actor.UserID, DeviceID: actor.DeviceID, ReceivedAt: now})
		if err != nil {
			return err
		}
		if err := addHistory(tx, id, seq); err != nil {
			return err
		}
		if err := s.indexMove(tx, seq, entWarning, id, nil, warningScopes(w)); err != nil {
			return err
		}
	}
	return nil
}

// BlobMeta returns a stored photo's metadata, nil when there is none.
func (s *Store) BlobMeta(sum string) (*BlobMeta, error) {
	m, err := view(s, func(tx *bolt.Tx) (*BlobMeta, error) {
		return load[BlobMeta](tx.Bucket(schema.BucketBlobs), []byte(sum))
	})
	if err != nil {
		return nil, fmt.Errorf("read photo %s: %w", sum, err)
	}
	return m, nil
}

// OpenBlob opens a photo for a user whose scope holds a warning that refers
// to it, or its uploader. Anyone else gets not_found, so a hash reveals
// nothing. On a node of a cluster that lacks the photo's file, it is
// fetched from another node first (Options.FetchPhoto), and its error
// returned when none has it.
func (s *Store) OpenBlob(ctx context.Context, actor syncproto.Actor, sum string) (*BlobMeta, *os.File, error) {
	meta, err := s.BlobMeta(sum)
	if err != nil {
		return nil, nil, err
	}
	notFound := syncproto.Errorf(syncproto.CodeNotFound, "no photo %s", sum)
	if meta == nil {
		return nil, nil, notFound
	}
	allowed := false
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.BucketBlobRefs).Cursor()
		prefix := []byte(sum)
		for k, by := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, by = c.Next() {
			// Only the uploader's own attempts make a photo readable.
			if string(by) != meta.UploadedBy {
				continue
			}
			// Its author keeps it; others need the warning in scope.
			if string(by) == actor.UserID {
				allowed = true
				return nil
			}
			w, err := s.loadWarning(tx, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			if w != nil && syncproto.CanRead(actor, w) {
				allowed = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("check who may read photo %s: %w", sum, err)
	}
	if !allowed {
		return nil, nil, notFound
	}
	f, err := s.openBlobFile(sum, meta.Size)
	if err != nil && s.fetchPhoto != nil {
		if ferr := s.fetchPhoto(ctx, sum); ferr != nil {
			return nil, nil, ferr
		}
		f, err = s.openBlobFile(sum, meta.Size)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open blob: %w", err)
	}
	return meta, f, nil
}

// openBlobFile opens the file of the photo sum when it is there with size
// bytes.
func (s *Store) openBlobFile(sum string, size int64) (*os.File, error) {
	f, err := os.Open(s.blobPath(sum))
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		f.Close()
		return nil, fmt.Errorf("photo %s: %w", sum, os.ErrNotExist)
	}
	return f, nil
}

// MissingPhotoFiles lists, sorted, the photos the store's metadata names
// whose file beside the database is absent or of another size: none in a
// whole store. A restore checks it before it lets a restored store serve.
func (s *Store) MissingPhotoFiles() ([]string, error) {
	var missing []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachRecord(tx.Bucket(schema.BucketBlobs), func(k []byte, b *BlobMeta) error {
			if fi, err := os.Stat(s.blobPath(string(k))); err != nil || fi.Size() != b.Size {
				missing = append(missing, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(missing)
	return missing, nil
}

// ErrPhotoMismatch is a photo's file sent by another node whose bytes do
// not hash to the photo's SHA-256: it is not installed.
var ErrPhotoMismatch = errors.New("the bytes do not match the photo's SHA-256")

// InstallPhoto installs the file of the photo sum, size bytes read from r,
// as another node of a cluster sent it: checked against sum (an error
// that wraps ErrPhotoMismatch when the bytes hash to another), fsynced,
// then renamed into place, so the file appears whole or not at all. It
// changes no metadata: a node installs the photos its metadata names but
// lacks, and those a node that receives a photo sends before its metadata
// commits. A file without metadata is harmless: backups, snapshots and
// the sweep of photos go by the metadata.
func (s *Store) InstallPhoto(sum string, size int64, r io.Reader) error {
	if !syncproto.ValidSHA256(sum) {
		return fmt.Errorf("install photo: %q is not a SHA-256", sum)
	}
	if size < 0 || size > syncproto.MaxBlobBytes {
		return fmt.Errorf("install photo %s: a size of %d bytes", sum, size)
	}
	path := s.blobPath(sum)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fetch-*")
	if err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	if n != size {
		return fmt.Errorf("install photo %s: the file ended after %d of %d bytes", sum, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("install photo %s: %w (they hash to %s)", sum, ErrPhotoMismatch, got)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install photo %s: %w", sum, err)
	}
	return nil
}

// OpenPhotoFile opens this node's file of the photo sum, with or without
// its metadata, for another node of the cluster that lacks it; the file's
// size with it. os.ErrNotExist (wrapped) when it is not here.
func (s *Store) OpenPhotoFile(sum string) (*os.File, int64, error) {
	if !syncproto.ValidSHA256(sum) {
		return nil, 0, fmt.Errorf("open photo file: %q is not a SHA-256: %w", sum, os.ErrNotExist)
	}
	f, err := os.Open(s.blobPath(sum))
	if err != nil {
		return nil, 0, fmt.Errorf("open photo file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open photo file: %w", err)
	}
	return f, fi.Size(), nil
}

// HasPhotoFile reports whether this node holds a file of the photo sum of
// size bytes (its contents are not read).
func (s *Store) HasPhotoFile(sum string, size int64) bool {
	if !syncproto.ValidSHA256(sum) {
		return false
	}
	fi, err := os.Stat(s.blobPath(sum))
	return err == nil && fi.Size() == size
}
