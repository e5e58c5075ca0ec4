// Package durable writes files so that a crash or a power cut leaves
// either the old content or the new one: write a temporary file beside
// the target, fsync it, rename it over the target, fsync the directory.
// The server's offline commands, its restore and its file compaction all
// need that, and a rename is durable only once its directory is synced.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// Sync flushes the file or directory at path to disk; on a directory it
// makes the renames and creations in it durable.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// WriteFile replaces path with data, readable by its owner only, so that
// a crash leaves the old file or the new one and never a torn one.
func WriteFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return Sync(dir)
}
