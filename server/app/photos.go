package app

import (
	"context"
	"io"
	"os"

	"github.com/fieldsync/fieldsync/server/store"
)

// CheckPhotoRoom refuses, with photo_quota_exceeded, a photo of size bytes
// that would take the caller's device past its quota for today. It writes
// nothing: a request asks it before it reads a photo's bytes, and PutPhoto
// checks again as it stores them.
func (a *App) CheckPhotoRoom(p Principal, size int64) error {
	return a.store.PhotoRoom(p.Actor, size)
}

// PutPhoto stores a photo sent in one request under its SHA-256 (sum, in
// lowercase hex): invalid_request when the bytes do not hash to sum,
// payload_too_large past syncproto.MaxBlobBytes, photo_quota_exceeded past
// the device's quota. Sending a photo already held changes nothing.
func (a *App) PutPhoto(ctx context.Context, p Principal, sum, mediaType string, body io.Reader) (*store.BlobMeta, error) {
	return a.store.PutBlob(ctx, p.Actor, sum, mediaType, body)
}

// OpenPhoto opens a photo for a caller whose scope holds a warning whose
// attempt names it, or for its uploader; not_found for anyone else, so a
// hash reveals nothing. The caller closes the file.
func (a *App) OpenPhoto(ctx context.Context, p Principal, sum string) (*store.BlobMeta, *os.File, error) {
	return a.store.OpenBlob(ctx, p.Actor, sum)
}
