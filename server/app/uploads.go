package app

import (
	"context"
	"net/http"
)

// UploadsDir is the directory of the unfinished photo uploads inside the
// store's directory: on the same file system as its blobs, so a finished
// upload is renamed into them. A backup leaves it out: an unfinished upload
// is resumed from the phone, which still holds the photo.
const UploadsDir = "uploads"

// ServeUpload answers one resumable upload request (PROTOCOL.md section
// 6a) of an authenticated caller: tus 1.0 under syncproto.UploadsPath. It
// returns an error, in place of an answer, for a request it refuses:
// invalid_request, payload_too_large, not_found for an upload that is not
// the caller's device's and user's, rate_limited past the device's cap of
// unfinished uploads, and the store's refusal of a finished file whose
// SHA-256 is not the one it was created with.
func (a *App) ServeUpload(w http.ResponseWriter, r *http.Request, p Principal) error {
	return a.uploads.Serve(w, r, p.Actor)
}

// SweepUploads deletes the unfinished uploads untouched for
// Config.UploadExpiry and returns how many.
func (a *App) SweepUploads(ctx context.Context) (int, error) {
	return a.uploads.Sweep(ctx)
}

// SweepPhotos deletes the photos that no attempt names and that arrived
// more than Config.OrphanPhotoGrace ago, and returns how many: a phone
// pushes the attempt naming a photo well within it, so what is left is
// a refused attempt's photo or bytes sent only to fill the disk.
func (a *App) SweepPhotos(ctx context.Context) (int, error) {
	return a.store.SweepPhotos(ctx, a.cfg.OrphanPhotoGrace)
}
