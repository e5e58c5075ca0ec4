package store

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Snapshots of a replicated store (docs/CLUSTER.md). A cluster's state
// machine hands raft the store as the backup streams it: the database as
// one read transaction saw it, then the photos it lists that are on this
// node's disk (a node may lack a photo that another received, until photos
// travel between nodes), closed by the trailer. A node that falls behind or
// joins new installs such a stream in place with InstallSnapshot.

// Snapshot is the store at one applied index, copied aside, ready to be
// written out while the store goes on.
type Snapshot struct {
	s     *Store
	m     *BackupManifest
	blobs []BlobMeta
	spool *spoolFile
	// Index is the applied index the snapshot holds.
	Index uint64
}

// Snapshot copies the store as it is now. The caller must let no group
// apply meanwhile (a state machine's Snapshot runs between two applies),
// so that the copy holds exactly the entries up to its Index.
func (s *Store) Snapshot() (*Snapshot, error) {
	m, blobs, spool, err := s.snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &Snapshot{s: s, m: m, blobs: blobs, spool: spool, Index: s.applied.Load()}, nil
}

// WriteTo writes the snapshot as a backup stream. A photo whose file is
// not on this node, or was swept since, is left out; the trailer counts
// those written.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	m := sn.m
	if err := writeJSONEntry(tw, schema.BackupManifestName, m.TakenAt, m); err != nil {
		return cw.n, fmt.Errorf("snapshot: manifest: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: DBFile, Mode: 0o600, Size: m.DBBytes, ModTime: m.TakenAt, Typeflag: tar.TypeReg}); err != nil {
		return cw.n, fmt.Errorf("snapshot: database header: %w", err)
	}
	h := sha256.New()
	if _, err := sn.spool.f.Seek(0, io.SeekStart); err != nil {
		return cw.n, fmt.Errorf("snapshot: %w", err)
	}
	if n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(sn.spool.f, m.DBBytes)); err != nil || n != m.DBBytes {
		return cw.n, fmt.Errorf("snapshot: database: %d of %d bytes: %w", n, m.DBBytes, err)
	}
	trailer := schema.BackupTrailer{DBSHA256: hex.EncodeToString(h.Sum(nil))}
	// The sweep of unreferenced photos deletes none while they are copied.
	sn.s.photoFiles.RLock()
	defer sn.s.photoFiles.RUnlock()
	for _, b := range sn.blobs {
		fi, err := os.Stat(sn.s.blobPath(b.SHA256))
		if err != nil || fi.Size() != b.Size {
			continue
		}
		if err := sn.s.backupBlob(tw, b, m.TakenAt); err != nil {
			return cw.n, fmt.Errorf("snapshot: photo %s: %w", b.SHA256, err)
		}
		trailer.Blobs++
		trailer.BlobBytes += b.Size
	}
	if err := writeJSONEntry(tw, schema.BackupTrailerName, m.TakenAt, trailer); err != nil {
		return cw.n, fmt.Errorf("snapshot: trailer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("snapshot: %w", err)
	}
	return cw.n, nil
}

// Close lets go of the snapshot's copy.
func (sn *Snapshot) Close() { sn.spool.close() }

// InstallSnapshot replaces the store's whole state with the snapshot in r
// (what Snapshot.WriteTo wrote, on this node or another), in one
// transaction, while the store stays open: readers see the old state or
// the new one. Its photos join this node's; its incarnation and applied
// index become the store's, since a snapshot is the cluster's own state,
// not an older one. The caller must let no group apply meanwhile.
func (s *Store) InstallSnapshot(r io.Reader) error {
	if err := s.install(r, nil); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	return nil
}

// InstallBackup is InstallSnapshot of a backup stream (Backup's, of this
// store or of a single server's) that becomes a cluster's state at raft
// index: the backup's incarnation is kept, so every phone's cursor stays
// valid, but its applied index, which counts the commits of the store it
// was taken from, is replaced by index, so that the entries raft applies
// next are not skipped. The backup's schema must be this binary's.
func (s *Store) InstallBackup(r io.Reader, index uint64) error {
	if err := s.install(r, &index); err != nil {
		return fmt.Errorf("install backup at index %d: %w", index, err)
	}
	return nil
}

// install replaces the store's state with the backup stream in r, and
// records index as the applied index when it is not nil.
func (s *Store) install(r io.Reader, index *uint64) error {
	tmp, err := os.MkdirTemp(s.dir, ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dbPath, err := s.readSnapshot(r, tmp)
	if err != nil {
		return err
	}
	src, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open its database: %w", err)
	}
	defer src.Close()
	s.applyMu.Lock()
	var inc [16]byte
	var applied uint64
	txid := 0
	err = src.View(func(from *bolt.Tx) error {
		if v := schema.VersionOf(from); v != SchemaVersion {
			return fmt.Errorf("it has schema %d, this binary %d: run the same version on every node", v, SchemaVersion)
		}
		return s.db.Update(func(to *bolt.Tx) error {
			txid = to.ID()
			if err := replaceBuckets(from, to); err != nil {
				return err
			}
			meta := to.Bucket(schema.BucketMeta)
			if index != nil {
				if err := meta.Put(schema.KeyAppliedIndex, schema.U64(*index)); err != nil {
					return err
				}
			}
			copy(inc[:], meta.Get(schema.KeyIncarnation))
			if v := meta.Get(schema.KeyAppliedIndex); len(v) == 8 {
				applied = schema.Uint64(v)
			}
			return nil
		})
	})
	if err != nil {
		s.applyMu.Unlock()
		return err
	}
	s.mu.Lock()
	s.incarnation = inc
	s.mu.Unlock()
	s.applied.Store(applied)
	s.cache.reset(txid)
	s.notify.wakeAll()
	s.progressed()
	s.applyMu.Unlock()
	// The state's signing keys are now the snapshot's: the running
	// server signs and verifies with them (a restored single server's
	// keys sign the tokens its phones hold).
	s.signingKeysChanged()
	return nil
}

// readSnapshot extracts r's database into dir and its photos into the
// store, checking the database's hash against the trailer and each
// photo's against its name, and returns the database's path.
func (s *Store) readSnapshot(r io.Reader, dir string) (string, error) {
	tr := tar.NewReader(r)
	dbPath := filepath.Join(dir, DBFile)
	var dbSum string
	var trailer *schema.BackupTrailer
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		switch {
		case h.Name == schema.BackupManifestName:
		case h.Name == DBFile:
			hash := sha256.New()
			if err := writeFileFrom(dbPath, io.TeeReader(tr, hash)); err != nil {
				return "", fmt.Errorf("database: %w", err)
			}
			dbSum = hex.EncodeToString(hash.Sum(nil))
		case strings.HasPrefix(h.Name, schema.BackupBlobDir):
			sum := strings.TrimPrefix(h.Name, schema.BackupBlobDir)
			if !syncproto.ValidSHA256(sum) {
				return "", fmt.Errorf("a photo named %q", h.Name)
			}
			if err := s.installBlob(sum, tr); err != nil {
				return "", fmt.Errorf("photo %s: %w", sum, err)
			}
		case h.Name == schema.BackupTrailerName:
			trailer = &schema.BackupTrailer{}
			if err := json.NewDecoder(tr).Decode(trailer); err != nil {
				return "", fmt.Errorf("trailer: %w", err)
			}
		default:
			return "", fmt.Errorf("an unknown entry %q", h.Name)
		}
	}
	if trailer == nil {
		return "", errors.New("the stream ended before its trailer")
	}
	if dbSum == "" || dbSum != trailer.DBSHA256 {
		return "", errors.New("the database does not match the trailer's SHA-256")
	}
	return dbPath, nil
}

// installBlob writes a snapshot's photo into the store, unless this node
// has it already, checking its bytes against its name.
func (s *Store) installBlob(sum string, r io.Reader) error {
	path := s.blobPath(sum)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".snapshot"
	hash := sha256.New()
	if err := writeFileFrom(tmp, io.TeeReader(r, hash)); err != nil {
		return err
	}
	if hex.EncodeToString(hash.Sum(nil)) != sum {
		os.Remove(tmp)
		return errors.New("its bytes do not match its SHA-256")
	}
	return os.Rename(tmp, path)
}

// writeFileFrom writes r into a new file at path, fsynced.
func writeFileFrom(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaceBuckets makes to's buckets exactly from's: every key, value,
// nested bucket and sequence.
func replaceBuckets(from, to *bolt.Tx) error {
	var names [][]byte
	if err := to.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, append([]byte(nil), name...))
		return nil
	}); err != nil {
		return err
	}
	for _, name := range names {
		if err := to.DeleteBucket(name); err != nil {
			return fmt.Errorf("clear bucket %s: %w", name, err)
		}
	}
	return from.ForEach(func(name []byte, b *bolt.Bucket) error {
		nb, err := to.CreateBucket(name)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
		return copyBucket(b, nb)
	})
}

func copyBucket(from, to *bolt.Bucket) error {
	// The keys come in order: full pages make the copy as small as bbolt
	// makes a file. Later writes split them at each bucket's own fill.
	to.FillPercent = 1.0
	if err := from.ForEach(func(k, v []byte) error {
		if v != nil {
			return to.Put(k, v)
		}
		nb, err := to.CreateBucket(k)
		if err != nil {
			return err
		}
		return copyBucket(from.Bucket(k), nb)
	}); err != nil {
		return err
	}
	return to.SetSequence(from.Sequence())
}
