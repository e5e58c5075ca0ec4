package e2e_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPhotos: an attempt is accepted before its photo arrives; the state
// says which photos are missing until the upload, which devices then pull.
func TestPhotos(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.Msgpack, nil)
	a1, leadA, leadB := c.dev["a1"], c.dev["leadA"], c.dev["leadB"]
	resp, err := c.dev["center1"].ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("P1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	id := resp.Created[0].ID
	photo, hash := servertest.PNG(strings.Repeat("现场照片", 100))

	body := recordBody(syncproto.OutcomeDissuaded, true)
	body.Photos = []string{hash}
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, id, 0, body)).Results[0])
	got, before := pullAll(t, a1, "", 0)
	if w := warningOf(t, got, id); len(w.MissingPhotos) != 1 || w.MissingPhotos[0] != hash {
		t.Fatalf("missing photos before upload = %v", w.MissingPhotos)
	}

	if _, err := a1.PutBlob(ctx, hash, "image/png", photo[:len(photo)-1]); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("upload with a wrong hash: %v", err)
	}
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatalf("upload again: %v", err)
	}
	page, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID, Cursor: before.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].ID != id {
		t.Fatalf("after upload the cadre pulled %+v, want the warning again", page.Changes)
	}
	if w := page.Changes[0].Data.(*syncproto.Warning); len(w.MissingPhotos) != 0 {
		t.Fatalf("still missing after upload: %v", w.MissingPhotos)
	}
	data, err := leadA.GetBlob(ctx, hash)
	if err != nil || !bytes.Equal(data, photo) {
		t.Fatalf("lead of the township reads the photo: %d bytes, %v", len(data), err)
	}
	if _, err := leadB.GetBlob(ctx, hash); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("lead of another township: %v, want not_found", err)
	}
	if _, err := a1.PutBlob(ctx, hash, "text/plain", photo); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("non-image upload: %v", err)
	}

	// Naming another's photo in one's own attempt grants nothing, and an
	// upload of other bytes under its hash does not say it exists.
	b1 := c.dev["b1"]
	own, err := c.dev["center1"].ImportFeed(ctx, []syncproto.FeedWarning{servertest.FeedRow("P2", unitVillB1, syncproto.RiskLow, time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	steal := recordBody(syncproto.OutcomeDissuaded, true)
	steal.Photos = []string{hash}
	mustApplied(t, push(t, b1, op(b1, syncproto.OpRecorded, own.Created[0].ID, 0, steal)).Results[0])
	if _, err := b1.GetBlob(ctx, hash); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("b1 named a1's photo and reads it: %v", err)
	}
	if _, err := b1.PutBlob(ctx, hash, "image/png", []byte("\x89PNG\r\n\x1a\nnot the photo")); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("junk under an existing hash: %v", err)
	}
}
