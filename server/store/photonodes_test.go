package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// twoNodes are two stores on one disk that apply the same entries, as two
// nodes of a cluster on loopback do: every group of the first goes, as
// one entry, to the second and then to the first. The second notes the photos it stored without
// their files.
type twoNodes struct {
	a, b    *store.Store
	dirA    string
	dirB    string
	mu      sync.Mutex
	index   uint64
	missing []string
	// replicatePhoto is the first store's ReplicatePhoto, when set.
	replicatePhoto func(ctx context.Context, sum, path string, size int64) error
}

func openTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	root := t.TempDir()
	n := &twoNodes{dirA: filepath.Join(root, "a"), dirB: filepath.Join(root, "b")}
	b, err := store.Open(n.dirB, store.Options{Create: true, PhotoMissing: func(sum string) {
		n.mu.Lock()
		n.missing = append(n.missing, sum)
		n.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a, err := store.Open(n.dirA, store.Options{Create: true,
		ReplicatePhoto: func(ctx context.Context, sum, path string, size int64) error {
			if n.replicatePhoto == nil {
				return nil
			}
			return n.replicatePhoto(ctx, sum, path, size)
		},
		Replicate: func(_ context.Context, st *store.Store, entry []byte) (*store.Applied, error) {
			n.mu.Lock()
			n.index++
			index := n.index
			n.mu.Unlock()
			// The other node first: a follower may apply an entry
			// before the node that made it.
			if _, err := b.ApplyEntry(index, entry); err != nil {
				return nil, err
			}
			return st.ApplyEntry(index, entry)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	n.a, n.b = a, b
	return n
}

func (n *twoNodes) missingNoted() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.missing)
}

func testPhoto(seed string) ([]byte, string) {
	photo := bytes.Repeat([]byte(seed), 2000)
	sum := sha256.Sum256(photo)
	return photo, hex.EncodeToString(sum[:])
}

// TestStore_PhotoOnAnotherNode: a node that applies the entry of a photo
// another node received renames none of its own files, even one at the
// receiving node's staged path inside its own directory; it stores the
// metadata, notes the file as missing, and installs it from a peer's
// bytes only when they hash to the photo.
func TestStore_PhotoOnAnotherNode(t *testing.T) {
	ctx := context.Background()
	n := openTwoNodes(t)
	actor := syncproto.Actor{UserID: "u1", DeviceID: "d1"}
	photo, sum := testPhoto("photo")

	// The same name under each node's directory: the entry names it
	// relative to the store's directory.
	// The second node holds other photos under the same two digits, so a
	// rename there would succeed.
	decoy := writeUpload(t, n.dirB, []byte("the second node's own upload"))
	if err := os.MkdirAll(filepath.Join(n.dirB, "blobs", sum[:2]), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := n.a.PutBlobFile(ctx, actor, sum, "image/jpeg", writeUpload(t, n.dirA, photo)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(decoy); err != nil || string(got) != "the second node's own upload" {
		t.Fatalf("the second node's file at the same path: %q %v", got, err)
	}
	if !n.a.HasPhotoFile(sum, int64(len(photo))) {
		t.Fatal("the receiving node lacks the photo")
	}
	if m := blobMeta(t, n.b, sum); m == nil || m.Size != int64(len(photo)) {
		t.Fatalf("the other node's metadata: %+v", m)
	}
	if n.b.HasPhotoFile(sum, int64(len(photo))) {
		t.Fatal("the other node holds a file it was never sent")
	}
	if got := n.missingNoted(); !slices.Equal(got, []string{sum}) {
		t.Fatalf("noted missing %v, want the photo", got)
	}
	if got, err := n.b.MissingPhotoFiles(); err != nil || !slices.Equal(got, []string{sum}) {
		t.Fatalf("MissingPhotoFiles: %v %v", got, err)
	}

	t.Run("WrongBytes", func(t *testing.T) {
		wrong := append([]byte("X"), photo[1:]...)
		err := n.b.InstallPhoto(sum, int64(len(wrong)), bytes.NewReader(wrong))
		if !errors.Is(err, store.ErrPhotoMismatch) {
			t.Fatalf("other bytes: %v, want ErrPhotoMismatch", err)
		}
		if err := n.b.InstallPhoto(sum, int64(len(photo)), bytes.NewReader(photo[:100])); err == nil || errors.Is(err, store.ErrPhotoMismatch) {
			t.Fatalf("a cut transfer: %v, want an error of its own", err)
		}
		if n.b.HasPhotoFile(sum, int64(len(photo))) {
			t.Fatal("refused bytes were installed")
		}
	})
	t.Run("Installed", func(t *testing.T) {
		f, size, err := n.a.OpenPhotoFile(sum)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := n.b.InstallPhoto(sum, size, f); err != nil {
			t.Fatal(err)
		}
		if got, err := n.b.MissingPhotoFiles(); err != nil || len(got) != 0 {
			t.Fatalf("still missing: %v %v", got, err)
		}
		if got, err := os.ReadFile(filepath.Join(n.dirB, "blobs", sum[:2], sum)); err != nil || !bytes.Equal(got, photo) {
			t.Fatalf("the installed file: %d bytes, %v", len(got), err)
		}
	})
}

// TestStore_ReplicatePhotoFirst: the receiving node hands the checked
// file to ReplicatePhoto before it commits the metadata; a node that was
// sent the file applies the metadata over it, and a refusal commits
// nothing anywhere.
func TestStore_ReplicatePhotoFirst(t *testing.T) {
	ctx := context.Background()
	n := openTwoNodes(t)
	actor := syncproto.Actor{UserID: "u1", DeviceID: "d1"}

	t.Run("Held", func(t *testing.T) {
		photo, sum := testPhoto("held")
		n.replicatePhoto = func(_ context.Context, gotSum, path string, size int64) error {
			if m := blobMeta(t, n.a, gotSum); m != nil {
				t.Error("the metadata committed before the file was replicated")
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			return n.b.InstallPhoto(gotSum, size, f)
		}
		if _, err := n.a.PutBlob(ctx, actor, sum, "image/jpeg", bytes.NewReader(photo)); err != nil {
			t.Fatal(err)
		}
		for _, st := range []*store.Store{n.a, n.b} {
			if m := blobMeta(t, st, sum); m == nil || !st.HasPhotoFile(sum, int64(len(photo))) {
				t.Fatalf("a node lacks the photo or its metadata: %+v", m)
			}
		}
		if got := n.missingNoted(); len(got) != 0 {
			t.Fatalf("noted missing %v", got)
		}
	})
	t.Run("NoQuorum", func(t *testing.T) {
		photo, sum := testPhoto("refused")
		refusal := (&syncproto.Error{Code: syncproto.CodeUnavailable, Message: "no majority"}).With("reason", "no_quorum")
		n.replicatePhoto = func(context.Context, string, string, int64) error { return refusal }
		_, err := n.a.PutBlob(ctx, actor, sum, "image/jpeg", bytes.NewReader(photo))
		if syncproto.ErrorCode(err) != syncproto.CodeUnavailable {
			t.Fatalf("put: %v, want unavailable", err)
		}
		for _, st := range []*store.Store{n.a, n.b} {
			if m := blobMeta(t, st, sum); m != nil {
				t.Fatalf("metadata stored: %+v", m)
			}
		}
		if n.a.HasPhotoFile(sum, int64(len(photo))) {
			t.Fatal("the refused photo's file is in place")
		}
	})
}
