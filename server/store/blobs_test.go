package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// writeUpload writes data as a finished upload file beside the store's
// blobs, as the resumable uploads leave one.
func writeUpload(t *testing.T, dir string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, "uploads", "upload")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStore_PutBlobFile: a finished file that hashes to its sum is moved
// into the blobs and served like a PUT photo; one that does not is refused
// and left in place; a photo already held is a no-op that leaves the file.
func TestStore_PutBlobFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	actor := syncproto.Actor{UserID: "u1", DeviceID: "d1"}
	photo := bytes.Repeat([]byte("photo"), 1000)
	sum := sha256.Sum256(photo)
	hash := hex.EncodeToString(sum[:])

	t.Run("WrongHash", func(t *testing.T) {
		path := writeUpload(t, dir, append([]byte("x"), photo[1:]...))
		_, err := st.PutBlobFile(ctx, actor, hash, "image/png", path)
		if syncproto.ErrorCode(err) != syncproto.CodeInvalidRequest {
			t.Fatalf("other bytes: %v, want invalid_request", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the refused file is gone: %v", err)
		}
		if blobMeta(t, st, hash) != nil {
			t.Fatal("the refused photo is stored")
		}
	})
	t.Run("Stored", func(t *testing.T) {
		path := writeUpload(t, dir, photo)
		meta, err := st.PutBlobFile(ctx, actor, hash, "image/png", path)
		if err != nil || meta.Size != int64(len(photo)) || meta.UploadedBy != "u1" {
			t.Fatalf("store: %+v %v", meta, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the file was not moved: %v", err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "blobs", hash[:2], hash)); err != nil || !bytes.Equal(got, photo) {
			t.Fatalf("the blob on disk: %d bytes, %v", len(got), err)
		}
		if m := blobMeta(t, st, hash); m == nil || m.Size != int64(len(photo)) {
			t.Fatalf("metadata %+v", m)
		}
	})
	t.Run("AlreadyHeld", func(t *testing.T) {
		before := blobMeta(t, st, hash)
		path := writeUpload(t, dir, photo)
		meta, err := st.PutBlobFile(ctx, syncproto.Actor{UserID: "u2", DeviceID: "d2"}, hash, "image/png", path)
		if err != nil || *meta != *before {
			t.Fatalf("again: %+v %v, want %+v", meta, err, before)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the file of a held photo is gone: %v", err)
		}
	})
}
