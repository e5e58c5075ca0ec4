package e2e_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// What a signed-in cadre's phone can make the server keep: photos within
// a quota per device and day, photos no attempt names only for a grace
// period, and warnings only so large.

// putPhoto is a raw PUT /v1/blobs of a photo, as any client sends it.
func putPhoto(t *testing.T, c *city, d *servertest.Device, photo []byte, hash string) rawResp {
	t.Helper()
	return send(t, c.srv.URL, rawReq{Method: http.MethodPut, Path: "/v1/blobs/" + hash, Token: d.Token(),
		ContentType: "image/png", Accept: syncproto.MediaJSON, Body: photo})
}

// wantQuotaRefusal checks a photo_quota_exceeded answer: 429 with a
// Retry-After until the quota renews, and the quota in the details.
func wantQuotaRefusal(t *testing.T, r rawResp, quota int64) {
	t.Helper()
	e := wantError(t, r, http.StatusTooManyRequests, syncproto.CodePhotoQuotaExceeded)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 || s > 24*3600 {
		t.Fatalf("Retry-After %q: want the seconds until midnight", r.Header.Get("Retry-After"))
	}
	if q, _ := e.Details["quota_bytes"].(float64); int64(q) != quota {
		t.Fatalf("details %v: want quota_bytes %d", e.Details, quota)
	}
	if !strings.Contains(e.Message, "after midnight") {
		t.Fatalf("message %q does not say when the photo goes", e.Message)
	}
}

// TestPhotoQuota_PutRefused: a cadre's phone sending random bytes as
// photos is refused, once its quota of the day is spent, with a clear
// 429; the refused photo leaves nothing on disk. Another phone is not
// held back.
func TestPhotoQuota_PutRefused(t *testing.T) {
	const quota = 3 * 64 << 10
	c := newCityWith(t, servertest.Options{Codec: syncproto.JSON, PhotoQuota: quota})
	a1 := c.dev["a1"]
	for i := range 3 {
		photo, hash := testPhoto(64<<10, uint64(100+i))
		wantOK(t, putPhoto(t, c, a1, photo, hash), nil)
	}
	photo, hash := testPhoto(64<<10, 199)
	wantQuotaRefusal(t, putPhoto(t, c, a1, photo, hash), quota)
	if c.srv.Photo(t, hash) != nil {
		t.Fatal("the refused photo is stored")
	}
	if files := servertest.BlobFiles(t, c.srv.Dir); len(files) != 3 {
		t.Fatalf("files under blobs: %v, want the 3 photos within the quota", files)
	}
	wantOK(t, putPhoto(t, c, c.dev["b1"], photo, hash), nil)
}

// TestPhotoQuota_UploadRefused: resumable uploads count against the same
// quota. A creation past it is refused before any byte is sent; an upload
// that fitted when it was created but not when it completes (another
// photo of the device came first) is refused at its last PATCH, and
// deleted.
func TestPhotoQuota_UploadRefused(t *testing.T) {
	ctx := context.Background()
	const quota = 100 << 10
	c := newCityWith(t, servertest.Options{Codec: syncproto.JSON, PhotoQuota: quota})
	a1 := c.dev["a1"]
	first, firstHash := testPhoto(60<<10, 1)
	second, secondHash := testPhoto(60<<10, 2)
	firstURL := mustCreateUpload(t, a1, firstHash, "image/png", int64(len(first)))
	secondURL := mustCreateUpload(t, a1, secondHash, "image/png", int64(len(second)))
	if _, err := a1.PatchUpload(ctx, firstURL, 0, first); err != nil {
		t.Fatalf("the first photo: %v", err)
	}
	r := send(t, "", rawReq{Method: http.MethodPatch, Path: secondURL, Token: a1.Token(), ContentType: syncproto.MediaOffsetOctetStream,
		Accept: syncproto.MediaJSON, Header: map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0"}, Body: second})
	wantQuotaRefusal(t, r, quota)
	if c.srv.Photo(t, secondHash) != nil {
		t.Fatal("the photo past the quota is stored")
	}
	if left := uploadFiles(t, c.srv.Dir); len(left) != 0 {
		t.Fatalf("files left in uploads: %v", left)
	}

	third, thirdHash := testPhoto(60<<10, 3)
	r = send(t, c.srv.URL, rawReq{Method: http.MethodPost, Path: syncproto.UploadsPath, Token: a1.Token(), Accept: syncproto.MediaJSON,
		Header: map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": strconv.Itoa(len(third)), "Upload-Metadata": tusMeta(thirdHash, "image/png")}})
	wantQuotaRefusal(t, r, quota)
	if left := uploadFiles(t, c.srv.Dir); len(left) != 0 {
		t.Fatalf("a refused creation left %v", left)
	}
	if files := servertest.BlobFiles(t, c.srv.Dir); len(files) != 1 || files[0] != firstHash {
		t.Fatalf("files under blobs: %v, want only the first photo", files)
	}
}

// TestOrphanPhotos_Swept: photos that no attempt names are deleted once
// the grace has passed, with their files; a photo an attempt names stays
// and is served, whether the attempt came before or after it.
func TestOrphanPhotos_Swept(t *testing.T) {
	ctx := context.Background()
	clock := &fakeclock.Offset{}
	c := newCityWith(t, servertest.Options{Now: clock.Now})
	a1 := c.dev["a1"]
	var orphans []string
	for i := range 3 {
		photo, hash := testPhoto(32<<10, uint64(50+i))
		if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, hash)
	}
	named, namedHash := testPhoto(32<<10, 60)
	recordPhoto(t, c, "ORPHAN-1", namedHash)
	if _, err := a1.PutBlob(ctx, namedHash, "image/png", named); err != nil {
		t.Fatal(err)
	}
	early, earlyHash := testPhoto(32<<10, 61)
	if _, err := a1.PutBlob(ctx, earlyHash, "image/png", early); err != nil {
		t.Fatal(err)
	}
	recordPhoto(t, c, "ORPHAN-2", earlyHash)

	clock.Add(71 * time.Hour)
	if n, err := c.srv.App.SweepPhotos(ctx); err != nil || n != 0 {
		t.Fatalf("sweep within the grace: %d deleted, %v", n, err)
	}
	clock.Add(2 * time.Hour)
	if n, err := c.srv.App.SweepPhotos(ctx); err != nil || n != len(orphans) {
		t.Fatalf("sweep after the grace: %d deleted, %v; want %d", n, err, len(orphans))
	}
	for _, h := range orphans {
		if c.srv.Photo(t, h) != nil {
			t.Fatalf("orphan %s is still stored", h)
		}
	}
	files := servertest.BlobFiles(t, c.srv.Dir)
	if len(files) != 2 {
		t.Fatalf("files under blobs: %v, want the 2 named photos", files)
	}
	lead, err := c.srv.LoginDevice("leadA", testPassword, c.dev["leadA"].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{namedHash, earlyHash} {
		if _, err := lead.GetBlob(ctx, h); err != nil {
			t.Fatalf("the lead reads named photo %s: %v", h, err)
		}
	}
}

// attemptOps are n attempts by d on warning id with notes of noteLen
// characters.
func attemptOps(d *servertest.Device, id string, n, noteLen int) []syncproto.Op {
	ops := make([]syncproto.Op, n)
	for i := range ops {
		body := recordBody(syncproto.OutcomeUnreachable, false)
		body.Notes = strings.Repeat("x", noteLen)
		ops[i] = op(d, syncproto.OpRecorded, id, 0, body)
	}
	return ops
}

// importFor imports a warning for village A1 (assigned to a1) and returns
// its id.
func importFor(t *testing.T, c *city, ext string) string {
	t.Helper()
	resp, err := c.dev["center1"].ImportFeed(context.Background(), []syncproto.FeedWarning{servertest.FeedRow(ext, unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	return resp.Created[0].ID
}

// TestWarningFull_AttemptsCap: past the most attempts a warning holds,
// each further attempt is rejected with warning_full and a sentence for
// the cadre; the warning is not changed, and its lead can still return it.
func TestWarningFull_AttemptsCap(t *testing.T) {
	c := newCityWith(t, servertest.Options{WarningLimits: syncproto.WarningLimits{MaxAttempts: 5}})
	a1, leadA := c.dev["a1"], c.dev["leadA"]
	id := importFor(t, c, "FULL-1")
	resp := push(t, a1, attemptOps(a1, id, 7, 100)...)
	for _, r := range resp.Results[:5] {
		mustApplied(t, r)
	}
	for _, r := range resp.Results[5:] {
		if r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeWarningFull || !strings.Contains(r.Message, "5 attempts") {
			t.Fatalf("attempt %d past the cap: %+v, want rejected warning_full", r.ClientSeq, r)
		}
	}
	got, _ := pullAll(t, leadA, "", 0)
	w := warningOf(t, got, id)
	if len(w.Attempts) != 5 || w.Version != resp.Results[4].Version {
		t.Fatalf("the warning holds %d attempts at version %d; want 5 at %d", len(w.Attempts), w.Version, resp.Results[4].Version)
	}
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpReviewed, id, w.Version, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "请核实"})).Results[0])
}

// TestWarningFull_FloodOfLongNotes is the flood that made one warning
// 6.9 MB: seven pushes of 240 attempts with 3,900-character notes. Past
// the size limit every attempt is rejected with warning_full; the
// warning a lead pulls, and the answer of GET /v1/warnings/{id}, stay
// about the limit.
func TestWarningFull_FloodOfLongNotes(t *testing.T) {
	c := newCity(t, syncproto.Msgpack, nil)
	a1, leadA := c.dev["a1"], c.dev["leadA"]
	id := importFor(t, c, "FLOOD-1")
	applied, rejected := 0, 0
	for range 7 {
		for _, r := range push(t, a1, attemptOps(a1, id, 240, 3900)...).Results {
			switch {
			case r.Status == syncproto.StatusApplied:
				applied++
			case r.Code == syncproto.CodeWarningFull && strings.Contains(r.Message, "notes"):
				rejected++
			default:
				t.Fatalf("op %d: %+v", r.ClientSeq, r)
			}
		}
	}
	limit := syncproto.DefaultWarningLimits.MaxBytes
	if applied == 0 || applied > limit/3900 || rejected != 7*240-applied {
		t.Fatalf("%d applied, %d rejected", applied, rejected)
	}
	got, _ := pullAll(t, leadA, "", 0)
	w := warningOf(t, got, id)
	if n, err := syncproto.MsgpackSize(w); err != nil || n > limit || len(w.Attempts) != applied {
		t.Fatalf("the lead pulls %d bytes and %d attempts (%v); want at most %d bytes and %d attempts", n, len(w.Attempts), err, limit, applied)
	}
	r := send(t, c.srv.URL, rawReq{Method: http.MethodGet, Path: "/v1/warnings/" + id, Token: leadA.Token(), Accept: syncproto.MediaJSON})
	wantOK(t, r, nil)
	if len(r.Body) > 3*limit {
		t.Fatalf("GET /v1/warnings/%s is %d bytes", id, len(r.Body))
	}
}
