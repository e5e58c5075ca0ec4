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
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// photoOf is n bytes made from seed, and their SHA-256.
func photoOf(n int, seed byte) ([]byte, string) {
	b := bytes.Repeat([]byte{seed, seed + 1, seed + 2}, n/3+1)[:n]
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func openPhotoStore(t *testing.T, clock *fakeclock.Clock, quota int64) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Create: true, Now: clock.Now, PhotoQuota: quota})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

// beijing23 is 23:00 in Beijing, an hour before the quota renews.
var beijing23 = time.Date(2024, 5, 1, 23, 0, 0, 0, syncproto.Beijing)

// TestStore_PhotoQuota: a device's new photos count against its bytes of
// the day; past them a photo is refused with photo_quota_exceeded, whose
// retry_after is the next Beijing midnight, and nothing of it is kept. A
// photo already held costs nothing, another device has its own quota,
// and the next day starts afresh.
func TestStore_PhotoQuota(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(beijing23)
	st, dir := openPhotoStore(t, clock, 10_000)
	a1 := syncproto.Actor{UserID: "u1", DeviceID: "d1"}
	first, firstSum := photoOf(6000, 1)
	second, secondSum := photoOf(6000, 2)

	if _, err := st.PutBlob(ctx, a1, firstSum, "image/png", bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	_, err := st.PutBlob(ctx, a1, secondSum, "image/png", bytes.NewReader(second))
	e := syncproto.AsError(err)
	if e == nil || e.Code != syncproto.CodePhotoQuotaExceeded || e.Status() != 429 {
		t.Fatalf("past the quota: %v, want 429 photo_quota_exceeded", err)
	}
	if e.Details["retry_after"] != int64(3600) || e.Details["quota_bytes"] != int64(10_000) {
		t.Fatalf("details %v: want retry_after 3600 (midnight) and quota_bytes", e.Details)
	}
	if blobMeta(t, st, secondSum) != nil {
		t.Fatal("the refused photo is stored")
	}
	if files := servertest.BlobFiles(t, dir); len(files) != 1 || files[0] != firstSum {
		t.Fatalf("files under blobs: %v, want only the first photo", files)
	}
	if err := st.PhotoRoom(a1, 5000); syncproto.ErrorCode(err) != syncproto.CodePhotoQuotaExceeded {
		t.Fatalf("room for 5000 more bytes: %v", err)
	}
	if err := st.PhotoRoom(a1, 4000); err != nil {
		t.Fatalf("room for 4000 more bytes: %v", err)
	}

	path := writeUpload(t, dir, second)
	if _, err := st.PutBlobFile(ctx, a1, secondSum, "image/png", path); syncproto.ErrorCode(err) != syncproto.CodePhotoQuotaExceeded {
		t.Fatalf("a finished upload past the quota: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the refused upload is not left to its caller: %v", err)
	}

	if _, err := st.PutBlob(ctx, a1, firstSum, "image/png", bytes.NewReader(first)); err != nil {
		t.Fatalf("a photo already held: %v", err)
	}
	if _, err := st.PutBlob(ctx, syncproto.Actor{UserID: "u2", DeviceID: "d2"}, secondSum, "image/png", bytes.NewReader(second)); err != nil {
		t.Fatalf("another device: %v", err)
	}

	third, thirdSum := photoOf(6000, 3)
	clock.Add(time.Hour)
	if _, err := st.PutBlob(ctx, a1, thirdSum, "image/png", bytes.NewReader(third)); err != nil {
		t.Fatalf("the next day: %v", err)
	}
}

// TestStore_SweepPhotos: a photo no attempt names is deleted, metadata and
// file, once it is older than the grace; a younger one stays.
func TestStore_SweepPhotos(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(beijing23)
	st, dir := openPhotoStore(t, clock, 0)
	a1 := syncproto.Actor{UserID: "u1", DeviceID: "d1"}
	var sums []string
	for i := range 3 {
		photo, sum := photoOf(1000, byte(10*i))
		if _, err := st.PutBlob(ctx, a1, sum, "image/png", bytes.NewReader(photo)); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		clock.Add(time.Hour)
	}
	// The first is 3 hours old, the second 2, the third 1.
	if n, err := st.SweepPhotos(ctx, 150*time.Minute); err != nil || n != 1 {
		t.Fatalf("sweep: %d deleted, %v; want 1", n, err)
	}
	if blobMeta(t, st, sums[0]) != nil {
		t.Fatal("the old photo's metadata is left")
	}
	if files := servertest.BlobFiles(t, dir); len(files) != 2 {
		t.Fatalf("files under blobs: %v, want the two younger photos", files)
	}
	if n, err := st.SweepPhotos(ctx, 150*time.Minute); err != nil || n != 0 {
		t.Fatalf("second sweep: %d deleted, %v; want none", n, err)
	}
}

// blockingWriter blocks its first write until release is closed, telling
// started when it blocks.
type blockingWriter struct {
	started, release chan struct{}
	once             bool
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if !w.once {
		w.once = true
		close(w.started)
		<-w.release
	}
	return len(p), nil
}

// TestStore_SweepPhotosSparesBackup: while a backup copies the photos the
// sweep deletes none, so every photo the backup's snapshot lists is there
// to copy; the next sweep deletes them.
func TestStore_SweepPhotosSparesBackup(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(beijing23)
	st, _ := openPhotoStore(t, clock, 0)
	photo, sum := photoOf(1000, 1)
	if _, err := st.PutBlob(ctx, syncproto.Actor{UserID: "u1", DeviceID: "d1"}, sum, "image/png", bytes.NewReader(photo)); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)

	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	backup := make(chan error, 1)
	go func() {
		info, err := st.Backup(ctx, w)
		if err == nil && info.Blobs != 1 {
			err = errors.New("the backup holds no photo")
		}
		backup <- err
	}()
	<-w.started
	if n, err := st.SweepPhotos(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("sweep during a backup: %d deleted, %v; want none", n, err)
	}
	close(w.release)
	if err := <-backup; err != nil {
		t.Fatalf("backup: %v", err)
	}
	if n, err := st.SweepPhotos(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("sweep after the backup: %d deleted, %v; want 1", n, err)
	}
}

// TestStore_SweepPhotosThenStoredAgain: a photo stored again after the
// sweep deleted it keeps its new file.
func TestStore_SweepPhotosThenStoredAgain(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(beijing23)
	st, dir := openPhotoStore(t, clock, 0)
	a1 := syncproto.Actor{UserID: "u1", DeviceID: "d1"}
	photo, sum := photoOf(1000, 1)
	if _, err := st.PutBlob(ctx, a1, sum, "image/png", bytes.NewReader(photo)); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	if n, err := st.SweepPhotos(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if _, err := st.PutBlob(ctx, a1, sum, "image/png", bytes.NewReader(photo)); err != nil {
		t.Fatal(err)
	}
	if blobMeta(t, st, sum) == nil {
		t.Fatal("the photo stored again has no metadata")
	}
	if got, err := os.ReadFile(filepath.Join(dir, "blobs", sum[:2], sum)); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("the photo stored again: %d bytes, %v", len(got), err)
	}
}
