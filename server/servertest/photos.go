package servertest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// PNG returns a photo as a phone sends one, the PNG signature and then
// tag, and its SHA-256 in hex, the name it is sent and stored under.
// Different tags make different photos.
func PNG(tag string) (photo []byte, sum string) {
	photo = append([]byte("\x89PNG\r\n\x1a\n"), tag...)
	h := sha256.Sum256(photo)
	return photo, hex.EncodeToString(h[:])
}

// BlobFiles lists the names of the files under the photo directory of the
// store in dir, temporary ones included: what the store keeps on disk,
// whatever its records say.
func BlobFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.Base(path))
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}
