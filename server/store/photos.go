package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// What a signed-in device can leave on the server's disk: photos count
// against a quota of bytes per device and day, and a photo that no attempt
// names is deleted once it has had time to be named. Without them any
// cadre's phone could fill the disk with random bytes sent as photos.

// DefaultPhotoQuota is the bytes of new photos a device may store per
// day: a busy cadre sends a hundred photos of a few megabytes.
const DefaultPhotoQuota = 512 << 20

// DefaultOrphanPhotoGrace is how long a photo no attempt names is kept.
// The SDK pushes an attempt before it uploads its photos, so its photos
// are named on arrival; three days leave a client that uploads first a
// weekend out of signal before its push.
const DefaultOrphanPhotoGrace = 72 * time.Hour

// photoDay is what a device stored on one day (Beijing time).
type photoDay struct {
	Day    uint32 `json:"day"`
	Bytes  int64  `json:"bytes"`
	Photos int    `json:"photos"`
}

// usedToday is what the device stored today; a record of an earlier day
// counts nothing.
func usedToday(tx *bolt.Tx, deviceID string, now time.Time) (photoDay, error) {
	var d photoDay
	if deviceID == "" {
		return photoDay{Day: syncproto.DayOf(now)}, nil
	}
	if _, err := get(tx.Bucket(schema.BucketPhotoDays), []byte(deviceID), &d); err != nil {
		return photoDay{}, err
	}
	if today := syncproto.DayOf(now); d.Day != today {
		d = photoDay{Day: today}
	}
	return d, nil
}

// PhotoRoom refuses, with photo_quota_exceeded, a photo of size bytes that
// would take the device past its quota for today. It writes nothing: a
// request checks it before it reads a photo's bytes, and storing the photo
// checks again in its transaction.
func (s *Store) PhotoRoom(actor syncproto.Actor, size int64) error {
	var err error
	viewErr := s.db.View(func(tx *bolt.Tx) error {
		now := s.now()
		d, derr := usedToday(tx, actor.DeviceID, now)
		if derr != nil {
			return derr
		}
		err = overQuota(d, size, now, s.photoQuota)
		return nil
	})
	if viewErr != nil {
		return fmt.Errorf("read photo quota: %w", viewErr)
	}
	return err
}

// chargePhoto counts a new photo of size bytes against the device's quota,
// or refuses it before writing anything. A photo stored with no device
// (by the server's own tools, never over HTTP) is not counted.
func chargePhoto(tx *bolt.Tx, deviceID string, size int64, now time.Time, quota int64) error {
	if deviceID == "" {
		return nil
	}
	d, err := usedToday(tx, deviceID, now)
	if err != nil {
		return err
	}
	if err := overQuota(d, size, now, quota); err != nil {
		return err
	}
	d.Bytes += size
	d.Photos++
	return put(tx.Bucket(schema.BucketPhotoDays), []byte(deviceID), d)
}

func overQuota(d photoDay, size int64, now time.Time, quota int64) error {
	if d.Bytes+size <= quota {
		return nil
	}
	wait := syncproto.NextDayStart(now).Sub(now)
	return syncproto.Errorf(syncproto.CodePhotoQuotaExceeded,
		"this device has stored %d photos (%d MiB) today; with this one it would pass its %d MiB a day: "+
			"the photo stays on the phone and is sent after midnight, Beijing time", d.Photos, d.Bytes>>20, quota>>20).
		With("quota_bytes", quota).With("used_bytes", d.Bytes).
		With("retry_after", int64((wait+time.Second-1)/time.Second))
}

// unlinkPhotos removes the files of the photos whose metadata the
// transaction just committed deleted. It runs on the writer goroutine
// before the next transaction, so a photo stored again right after its
// deletion keeps its new file.
func (s *Store) unlinkPhotos() {
	for sum, done := range s.unlink {
		err := os.Remove(s.blobPath(sum))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		done(err)
	}
}

// SweepPhotos deletes the photos that no attempt names and that arrived
// more than grace ago: their metadata, then their files. It returns how
// many it deleted. While a backup copies the photos it deletes none (the
// next sweep does).
func (s *Store) SweepPhotos(ctx context.Context, grace time.Duration) (int, error) {
	if !s.photoFiles.TryLock() {
		return 0, nil
	}
	defer s.photoFiles.Unlock()
	removed := 0
	for {
		due, err := s.unreferencedPhotos(s.now().Add(-grace))
		if err != nil {
			return removed, err
		}
		n, err := s.deletePhotos(ctx, due, grace)
		removed += n
		if err != nil || len(due) < sweepBatch {
			return removed, err
		}
	}
}

// unreferencedPhotos lists up to sweepBatch photos stored before cutoff
// that no attempt names, in one pass over the photos and their references,
// both in hash order.
func (s *Store) unreferencedPhotos(cutoff time.Time) ([]string, error) {
	var due []string
	err := s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(schema.BucketBlobRefs).Cursor()
		ref, _ := refs.First()
		return forEachUntil(tx.Bucket(schema.BucketBlobs), func(sum, v []byte) (bool, error) {
			for ref != nil && bytes.Compare(ref[:min(len(ref), len(sum))], sum) < 0 {
				ref, _ = refs.Next()
			}
			if ref != nil && bytes.HasPrefix(ref, sum) {
				return true, nil
			}
			var m BlobMeta
			if err := decode(v, &m); err != nil {
				return false, err
			}
			if m.Created.Before(cutoff) {
				due = append(due, string(sum))
			}
			return len(due) < sweepBatch, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list unreferenced photos: %w", err)
	}
	return due, nil
}

// forEachUntil calls fn for each key of b in order until it returns false.
func forEachUntil(b *bolt.Bucket, fn func(k, v []byte) (bool, error)) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// deletePhotos deletes the photos of due that are still unreferenced and
// older than grace when the writer gets to them: an attempt may have named
// one since they were listed.
func (s *Store) deletePhotos(ctx context.Context, due []string, grace time.Duration) (int, error) {
	if len(due) == 0 {
		return 0, nil
	}
	r, err := submit[*photoDeletion](ctx, s, &deletePhotosCmd{Sums: due, Cutoff: s.now().Add(-grace).UTC()})
	if err != nil {
		return 0, fmt.Errorf("delete unreferenced photos: %w", err)
	}
	return r.deleted, errors.Join(r.errs...)
}

// deletePhotosCmd deletes the photos of Sums that are still unreferenced
// and stored before Cutoff; their files go once it commits, on every node.
type deletePhotosCmd struct {
	Sums   []string  `json:"sums"`
	Cutoff time.Time `json:"cutoff"`
}

// photoDeletion is how the deletion of photos' files went on this node:
// filled in after the commit, before the answer.
type photoDeletion struct {
	deleted int
	errs    []error
}

func (*deletePhotosCmd) kind() cmdKind { return cmdDeletePhotos }

func (c *deletePhotosCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	r := &photoDeletion{}
	blobs := tx.Bucket(schema.BucketBlobs)
	for _, sum := range c.Sums {
		var m BlobMeta
		found, err := get(blobs, []byte(sum), &m)
		if err != nil {
			return nil, err
		}
		if !found || !m.Created.Before(c.Cutoff) || referenced(tx, sum) {
			continue
		}
		if err := blobs.Delete([]byte(sum)); err != nil {
			return nil, err
		}
		s.unlink[sum] = func(err error) {
			if err != nil {
				r.errs = append(r.errs, fmt.Errorf("remove photo %s: %w", sum, err))
				return
			}
			r.deleted++
		}
	}
	return r, nil
}

// referenced reports whether an attempt names the photo sum.
func referenced(tx *bolt.Tx, sum string) bool {
	k, _ := tx.Bucket(schema.BucketBlobRefs).Cursor().Seek([]byte(sum))
	return k != nil && bytes.HasPrefix(k, []byte(sum))
}
