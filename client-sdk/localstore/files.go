package localstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// SavePhotoFile seals a photo's bytes into the store's folder and returns
// its SHA-256 (of the plain bytes, which is how the server names it).
func (s *Store) SavePhotoFile(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	sealed, err := s.seal(data, []byte("photo/"+hash))
	if err != nil {
		return "", err
	}
	path := s.photoPath(hash)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, sealed); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("store photo: %w", err)
	}
	return hash, nil
}

// PhotoFile returns a stored photo's plain bytes.
func (s *Store) PhotoFile(hash string) ([]byte, error) {
	sealed, err := os.ReadFile(s.photoPath(hash))
	if err != nil {
		return nil, fmt.Errorf("read photo: %w", err)
	}
	return s.unseal(sealed, []byte("photo/"+hash))
}

// RemovePhotoFile deletes a stored photo.
func (s *Store) RemovePhotoFile(hash string) error {
	if err := os.Remove(s.photoPath(hash)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove photo: %w", err)
	}
	return nil
}

func (s *Store) photoPath(hash string) string { return filepath.Join(s.dir, "photos", hash) }

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// Scrub rewrites the database file with only its live data. bbolt leaves a
// deleted value's bytes in free pages until they are reused; after a
// warning leaves this device, Scrub makes sure nothing of it stays in the
// file. The new file replaces the old one atomically: a crash leaves one or
// the other, whole.
func (s *Store) Scrub() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.dir, FileName)
	tmp := path + ".scrub"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	if err := bolt.Compact(dst, s.db, 4<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("scrub: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("scrub: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return s.open()
}
