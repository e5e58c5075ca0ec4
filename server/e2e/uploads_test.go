package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testPhoto is n bytes that start like a PNG, different for each seed, and
// their SHA-256.
func testPhoto(n int, seed uint64) ([]byte, string) {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	copy(b, "\x89PNG\r\n\x1a\n")
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// inFlightMax is the most body bytes a cut PATCH can lose on its way: the
// transport's write buffer, which holds what was read from the body but
// not yet written to the connection when the cut comes.
const inFlightMax = 4096

var errLinkCut = errors.New("the link was cut")

// cutLink is a phone's link that is cut after every cut bytes of an
// upload's PATCH body, and counts the body bytes it sent.
type cutLink struct {
	cut       int64
	transport *http.Transport
	mu        sync.Mutex
	sent      int64
}

func newCutLink(t *testing.T, cut int64) *cutLink {
	l := &cutLink{cut: cut, transport: &http.Transport{WriteBufferSize: inFlightMax}}
	t.Cleanup(l.transport.CloseIdleConnections)
	return l
}

func (l *cutLink) client() *http.Client { return &http.Client{Transport: l} }

func (l *cutLink) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && req.Body != nil {
		req = req.Clone(req.Context())
		left := req.ContentLength
		if left > l.cut {
			left = l.cut
		}
		req.Body = &cutBody{ReadCloser: req.Body, link: l, left: left, cuts: req.ContentLength > l.cut}
	}
	return l.transport.RoundTrip(req)
}

func (l *cutLink) bytesSent() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

type cutBody struct {
	io.ReadCloser
	link *cutLink
	left int64
	cuts bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 && b.cuts {
		return 0, errLinkCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	b.link.mu.Lock()
	b.link.sent += int64(n)
	b.link.mu.Unlock()
	return n, err
}

// recordPhoto imports a warning for village A1, and a1 records an attempt
// naming the photo; it returns the warning's id.
func recordPhoto(t *testing.T, c *city, ext, hash string) string {
	t.Helper()
	resp, err := c.dev["center1"].ImportFeed(context.Background(), []syncproto.FeedWarning{servertest.FeedRow(ext, unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour))})
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	id := resp.Created[0].ID
	a1 := c.dev["a1"]
	body := recordBody(syncproto.OutcomeDissuaded, true)
	body.Photos = []string{hash}
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, id, 0, body)).Results[0])
	return id
}

// TestUpload_ResumesAcrossCuts: a 200 KiB photo crosses a link cut every
// 40 KiB. Each call resumes from what the server holds, so the bytes sent
// in all are the photo's size plus at most what was in flight at each
// cut; the photo is then served and no longer missing.
func TestUpload_ResumesAcrossCuts(t *testing.T) {
	ctx := context.Background()
	logs := &servertest.Logs{}
	c := newCityWith(t, servertest.Options{Codec: syncproto.Msgpack, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	a1, leadA := c.dev["a1"], c.dev["leadA"]
	photo, hash := testPhoto(200<<10, 1)
	id := recordPhoto(t, c, "U1", hash)

	link := newCutLink(t, 40<<10)
	a1.HTTP = link.client()
	var created []string
	url := ""
	calls := 0
	for {
		calls++
		if calls > 20 {
			t.Fatalf("the photo did not arrive in %d calls", calls-1)
		}
		err := a1.UploadBlob(ctx, url, hash, "image/png", photo, func(u string) { created = append(created, u); url = u })
		if err == nil {
			break
		}
		if !errors.Is(err, errLinkCut) {
			t.Fatalf("call %d: %v, want the cut", calls, err)
		}
		// The server keeps what arrived once its side of the PATCH ends;
		// wait for that, so the next HEAD sees all of it.
		testwait.Until(t, "the server to end the cut PATCH", func() bool {
			return strings.Count(logs.String(), `"method":"PATCH"`) >= calls
		})
	}
	cuts := int64(calls - 1)
	if len(created) != 1 {
		t.Fatalf("%d uploads created, want 1 resumed across the cuts", len(created))
	}
	if cuts < 4 {
		t.Fatalf("%d cuts; a 200 KiB photo over a link cut every 40 KiB meets at least 4", cuts)
	}
	size := int64(len(photo))
	if sent := link.bytesSent(); sent < size || sent > size+cuts*inFlightMax {
		t.Fatalf("sent %d bytes for a photo of %d over %d cuts: want at most %d in flight per cut", sent, size, cuts, inFlightMax)
	}

	data, err := leadA.GetBlob(ctx, hash)
	if err != nil || !bytes.Equal(data, photo) {
		t.Fatalf("the lead reads the photo: %d bytes, %v", len(data), err)
	}
	got, _ := pullAll(t, a1, "", 0)
	if w := warningOf(t, got, id); len(w.MissingPhotos) != 0 {
		t.Fatalf("still missing after the upload: %v", w.MissingPhotos)
	}
	if _, err := a1.UploadOffset(ctx, url); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("HEAD of the finished upload: %v, want not_found", err)
	}
}

// TestUpload_WrongHashRefused: bytes that do not hash to the sum the upload
// was created with are refused by the last PATCH; the upload is deleted
// and the photo absent.
func TestUpload_WrongHashRefused(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	a1 := c.dev["a1"]
	photo, hash := testPhoto(50<<10, 2)
	other, _ := testPhoto(len(photo), 3)
	url := mustCreateUpload(t, a1, hash, "image/jpeg", int64(len(photo)))
	off, err := a1.PatchUpload(ctx, url, 0, other[:20<<10])
	if err != nil || off != 20<<10 {
		t.Fatalf("first part: offset %d, %v", off, err)
	}
	_, err = a1.PatchUpload(ctx, url, off, other[off:])
	var se *remote.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Err.Code != syncproto.CodeInvalidRequest || se.Err.Details["field"] != "sha256" {
		t.Fatalf("last PATCH of other bytes: %v, want 400 invalid_request on sha256", err)
	}
	if _, err := a1.UploadOffset(ctx, url); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("HEAD of the refused upload: %v, want not_found", err)
	}
	if c.srv.Photo(t, hash) != nil {
		t.Fatal("the store holds the refused photo")
	}
	if left := uploadFiles(t, c.srv.Dir); len(left) != 0 {
		t.Fatalf("files left in the uploads directory: %v", left)
	}
}

// uploadFiles lists the files under the store's uploads directory.
func uploadFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, app.UploadsDir), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestUpload_OthersSeeNoUpload: an upload exists only for the user and
// device that created it; HEAD, PATCH and DELETE by anyone else are 404.
func TestUpload_OthersSeeNoUpload(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	a1, b1 := c.dev["a1"], c.dev["b1"]
	photo, hash := testPhoto(30<<10, 4)
	url := mustCreateUpload(t, a1, hash, "image/png", int64(len(photo)))
	if _, err := a1.PatchUpload(ctx, url, 0, photo[:10<<10]); err != nil {
		t.Fatal(err)
	}
	a1Elsewhere, err := c.srv.LoginDevice("a1", testPassword, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*servertest.Device{"another user": b1, "a1's other device": a1Elsewhere} {
		if _, err := d.UploadOffset(ctx, url); errCode(err) != syncproto.CodeNotFound {
			t.Errorf("%s: HEAD %v, want not_found", name, err)
		}
		if _, err := d.PatchUpload(ctx, url, 10<<10, photo[10<<10:]); errCode(err) != syncproto.CodeNotFound {
			t.Errorf("%s: PATCH %v, want not_found", name, err)
		}
		if err := d.DeleteUpload(ctx, url); errCode(err) != syncproto.CodeNotFound {
			t.Errorf("%s: DELETE %v, want not_found", name, err)
		}
	}
	r := send(t, c.srv.URL, rawReq{Method: http.MethodPatch, Path: strings.TrimPrefix(url, c.srv.URL), Token: b1.Token(),
		ContentType: syncproto.MediaOffsetOctetStream, Accept: syncproto.MediaJSON,
		Header: map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "10240"}, Body: photo[10<<10:]})
	wantError(t, r, http.StatusNotFound, syncproto.CodeNotFound)
	if off, err := a1.UploadOffset(ctx, url); err != nil || off != 10<<10 {
		t.Fatalf("the owner's upload after the others tried: offset %d, %v", off, err)
	}
}

// TestUpload_ExpiresAfterUpkeep: an unfinished upload untouched for a day
// is deleted by the upkeep's sweep; the client's next call starts a new
// upload and completes.
func TestUpload_ExpiresAfterUpkeep(t *testing.T) {
	ctx := context.Background()
	clock := &fakeclock.Offset{}
	c := newCity(t, syncproto.Msgpack, clock.Now)
	a1 := c.dev["a1"]
	photo, hash := testPhoto(30<<10, 5)
	url := mustCreateUpload(t, a1, hash, "image/png", int64(len(photo)))
	if _, err := a1.PatchUpload(ctx, url, 0, photo[:10<<10]); err != nil {
		t.Fatal(err)
	}
	clock.Add(23 * time.Hour)
	if n, err := c.srv.App.SweepUploads(ctx); err != nil || n != 0 {
		t.Fatalf("sweep after 23 hours: %d deleted, %v", n, err)
	}
	clock.Add(2 * time.Hour)
	if n, err := c.srv.App.SweepUploads(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after 25 hours: %d deleted, %v; want 1", n, err)
	}
	if left := uploadFiles(t, c.srv.Dir); len(left) != 0 {
		t.Fatalf("files left after the sweep: %v", left)
	}
	// A day later the access token has expired too: the same device signs
	// in again.
	again, err := c.srv.LoginDevice("a1", testPassword, a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.UploadOffset(ctx, url); errCode(err) != syncproto.CodeNotFound {
		t.Fatalf("HEAD of the expired upload: %v, want not_found", err)
	}
	var created string
	if err := again.UploadBlob(ctx, url, hash, "image/png", photo, func(u string) { created = u }); err != nil {
		t.Fatalf("upload after expiry: %v", err)
	}
	if created == "" || created == url {
		t.Fatalf("new upload %q after the expired %q", created, url)
	}
	if c.srv.Photo(t, hash) == nil {
		t.Fatal("the photo is not stored")
	}
}

// TestUpload_CapPerDevice: a device keeps at most 16 unfinished uploads;
// one more is rate_limited until one finishes, is deleted or expires.
// Other devices are not held back.
func TestUpload_CapPerDevice(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	a1 := c.dev["a1"]
	var urls []string
	for i := range 16 {
		_, hash := testPhoto(16, uint64(10+i))
		url, err := a1.CreateUpload(ctx, hash, "image/jpeg", 1000)
		if err != nil {
			t.Fatalf("upload %d: %v", i+1, err)
		}
		urls = append(urls, url)
	}
	_, hash := testPhoto(16, 99)
	r := send(t, c.srv.URL, rawReq{Method: http.MethodPost, Path: syncproto.UploadsPath, Token: a1.Token(), Accept: syncproto.MediaJSON,
		Header: map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "1000", "Upload-Metadata": tusMeta(hash, "image/jpeg")}})
	wantError(t, r, http.StatusTooManyRequests, syncproto.CodeRateLimited)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if _, err := c.dev["b1"].CreateUpload(ctx, hash, "image/jpeg", 1000); err != nil {
		t.Fatalf("another device: %v", err)
	}
	if err := a1.DeleteUpload(ctx, urls[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.CreateUpload(ctx, hash, "image/jpeg", 1000); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// TestUpload_PhotoAlreadyHeld: uploading a photo the server already holds
// completes without changing it; other bytes under its hash are refused
// all the same, so the answer tells nobody the photo exists.
func TestUpload_PhotoAlreadyHeld(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.Msgpack, nil)
	a1, b1 := c.dev["a1"], c.dev["b1"]
	photo, hash := testPhoto(30<<10, 6)
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatal(err)
	}
	before := c.srv.Photo(t, hash)
	if err := a1.UploadBlob(ctx, "", hash, "image/png", photo, nil); err != nil {
		t.Fatalf("upload of a held photo: %v", err)
	}
	if err := b1.UploadBlob(ctx, "", hash, "image/png", photo, nil); err != nil {
		t.Fatalf("another user's upload of a held photo: %v", err)
	}
	other, _ := testPhoto(len(photo), 7)
	if err := b1.UploadBlob(ctx, "", hash, "image/png", other, nil); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("other bytes under a held hash: %v, want invalid_request", err)
	}
	if after := c.srv.Photo(t, hash); *after != *before {
		t.Fatalf("the held photo changed: %+v, was %+v", after, before)
	}
	if left := uploadFiles(t, c.srv.Dir); len(left) != 0 {
		t.Fatalf("files left in the uploads directory: %v", left)
	}
}

// tusMeta is Upload-Metadata for a photo.
func tusMeta(sum, contentType string) string {
	b64 := base64.StdEncoding.EncodeToString
	return "sha256 " + b64([]byte(sum)) + ",content_type " + b64([]byte(contentType))
}

// TestUpload_BadRequests: what tus would accept but a photo upload must not
// is refused in the protocol's error format, naming the header at fault.
func TestUpload_BadRequests(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	a1 := c.dev["a1"]
	photo, hash := testPhoto(2000, 8)
	url := mustCreateUpload(t, a1, hash, "image/png", int64(len(photo)))
	path := strings.TrimPrefix(url, c.srv.URL)
	tus := func(extra map[string]string) map[string]string {
		h := map[string]string{"Tus-Resumable": "1.0.0"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	patch := func(offset string) map[string]string {
		return tus(map[string]string{"Upload-Offset": offset})
	}
	for _, tc := range []struct {
		name   string
		req    rawReq
		status int
		code   string
		field  string
	}{
		{"NoMetadata", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Length": "10"})}, 400, syncproto.CodeInvalidRequest, "Upload-Metadata"},
		{"UppercaseHash", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Length": "10", "Upload-Metadata": tusMeta(strings.ToUpper(hash), "image/png")})}, 400, syncproto.CodeInvalidRequest, "Upload-Metadata"},
		{"NotAPhoto", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Length": "10", "Upload-Metadata": tusMeta(hash, "text/plain")})}, 400, syncproto.CodeInvalidRequest, "Upload-Metadata"},
		{"NoLength", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Metadata": tusMeta(hash, "image/png")})}, 400, syncproto.CodeInvalidRequest, "Upload-Length"},
		{"DeferredLength", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Defer-Length": "1", "Upload-Metadata": tusMeta(hash, "image/png")})}, 400, syncproto.CodeInvalidRequest, "Upload-Length"},
		{"TooLarge", rawReq{Path: syncproto.UploadsPath, Header: tus(map[string]string{"Upload-Length": strconv.Itoa(syncproto.MaxBlobBytes + 1), "Upload-Metadata": tusMeta(hash, "image/png")})}, 413, syncproto.CodePayloadTooLarge, "Upload-Length"},
		{"NoTusResumable", rawReq{Path: syncproto.UploadsPath, Header: map[string]string{"Upload-Length": "10", "Upload-Metadata": tusMeta(hash, "image/png")}}, 400, syncproto.CodeUnsupportedProtocol, "Tus-Resumable"},
		{"NoToken", rawReq{Path: syncproto.UploadsPath, Token: "-", Header: tus(map[string]string{"Upload-Length": "10", "Upload-Metadata": tusMeta(hash, "image/png")})}, 401, syncproto.CodeUnauthorized, ""},
		{"PatchContentType", rawReq{Method: http.MethodPatch, Path: path, ContentType: "image/png", Header: patch("0"), Body: photo}, 400, syncproto.CodeInvalidRequest, "Content-Type"},
		{"PatchNoOffset", rawReq{Method: http.MethodPatch, Path: path, ContentType: syncproto.MediaOffsetOctetStream, Header: tus(nil), Body: photo}, 400, syncproto.CodeInvalidRequest, "Upload-Offset"},
		{"PatchWrongOffset", rawReq{Method: http.MethodPatch, Path: path, ContentType: syncproto.MediaOffsetOctetStream, Header: patch("5"), Body: photo[5:]}, 409, syncproto.CodeOutOfOrder, ""},
		{"PatchPastLength", rawReq{Method: http.MethodPatch, Path: path, ContentType: syncproto.MediaOffsetOctetStream, Header: patch("0"), Body: append(photo, 0)}, 413, syncproto.CodePayloadTooLarge, ""},
		{"NoSuchUpload", rawReq{Method: http.MethodPatch, Path: syncproto.UploadsPath + a1.ID + "/../../fieldsync.db", ContentType: syncproto.MediaOffsetOctetStream, Header: patch("0"), Body: photo}, 404, syncproto.CodeNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.req.Token {
			case "":
				tc.req.Token = a1.Token()
			case "-":
				tc.req.Token = ""
			}
			if tc.req.Method == "" {
				tc.req.Method = http.MethodPost
			}
			tc.req.Accept = syncproto.MediaJSON
			e := wantError(t, send(t, c.srv.URL, tc.req), tc.status, tc.code)
			if tc.field != "" {
				wantField(t, e, tc.field)
			}
		})
	}
	// None of it touched the upload.
	if off, err := a1.UploadOffset(ctx, url); err != nil || off != 0 {
		t.Fatalf("offset after the bad requests: %d, %v", off, err)
	}
}

// TestUpload_BackupLeavesUploadsOut: an unfinished upload in the data
// directory is no part of a backup, which restores and checks clean.
func TestUpload_BackupLeavesUploadsOut(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.Msgpack, nil)
	a1 := c.dev["a1"]
	photo, hash := testPhoto(30<<10, 9)
	url := mustCreateUpload(t, a1, hash, "image/png", int64(len(photo)))
	if _, err := a1.PatchUpload(ctx, url, 0, photo[:10<<10]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := c.srv.Store.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Blobs != 0 {
		t.Fatalf("the backup holds %d photos; the unfinished upload is none", info.Blobs)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	rest, err := storefile.Restore(ctx, &buf, dir, storefile.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Check.Problems) != 0 {
		t.Fatalf("restored store: %v", rest.Check.Problems)
	}
	if _, err := os.Stat(filepath.Join(dir, app.UploadsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the restore brought an uploads directory: %v", err)
	}
}

// TestUpload_SweepSparesUploadInFlight: an upload whose PATCH is still
// receiving bytes is not deleted by the sweep, however old its last touch
// looks; the PATCH then completes the photo.
func TestUpload_SweepSparesUploadInFlight(t *testing.T) {
	ctx := context.Background()
	clock := &fakeclock.Offset{}
	c := newCity(t, syncproto.Msgpack, clock.Now)
	a1 := c.dev["a1"]
	photo, hash := testPhoto(30<<10, 11)
	url := mustCreateUpload(t, a1, hash, "image/png", int64(len(photo)))
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(photo))
	for k, v := range map[string]string{"Authorization": "Bearer " + a1.Token(), "Tus-Resumable": "1.0.0",
		"Upload-Offset": "0", "Content-Type": syncproto.MediaOffsetOctetStream} {
		req.Header.Set(k, v)
	}
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("PATCH: %v", err)
		}
		done <- resp
	}()
	if _, err := pw.Write(photo[:1024]); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the first bytes on the server's disk", func() bool {
		for _, f := range uploadFiles(t, c.srv.Dir) {
			if fi, err := os.Stat(f); err == nil && !strings.HasSuffix(f, ".info") && fi.Size() >= 1024 {
				return true
			}
		}
		return false
	})
	clock.Add(25 * time.Hour)
	if n, err := c.srv.App.SweepUploads(ctx); err != nil || n != 0 {
		t.Fatalf("sweep during the PATCH: %d deleted, %v", n, err)
	}
	if _, err := pw.Write(photo[1024:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	resp := <-done
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH answered %d", resp.StatusCode)
	}
	if c.srv.Photo(t, hash) == nil {
		t.Fatal("the photo is not stored")
	}
}

// TestUpload_SecondCreationReplacesFirst: a creation whose answer the
// link lost leaves an upload the phone never hears of; when the phone
// creates the same photo's upload again, the server deletes the first, so
// it neither waits a day to expire nor counts against the device's cap.
// Another photo's upload and another device's are left alone.
func TestUpload_SecondCreationReplacesFirst(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	a1, b1 := c.dev["a1"], c.dev["b1"]
	data, hash := testPhoto(3000, 7)
	_, other := testPhoto(3000, 8)
	lost := mustCreateUpload(t, a1, hash, "image/jpeg", int64(len(data)))
	if _, err := a1.PatchUpload(ctx, lost, 0, data[:1000]); err != nil {
		t.Fatal(err)
	}
	kept := mustCreateUpload(t, a1, other, "image/jpeg", 3000)
	elsewhere := mustCreateUpload(t, b1, hash, "image/jpeg", int64(len(data)))
	again := mustCreateUpload(t, a1, hash, "image/jpeg", int64(len(data)))
	if again == lost {
		t.Fatal("the second creation got the first's URL")
	}
	if _, err := a1.UploadOffset(ctx, lost); !remote.UploadGone(err) {
		t.Fatalf("the first upload of the photo: %v, want gone", err)
	}
	for _, u := range []struct {
		dev  *servertest.Device
		name string
		url  string
	}{{a1, "the new upload", again}, {a1, "another photo's upload", kept}, {b1, "another device's upload", elsewhere}} {
		if off, err := u.dev.UploadOffset(ctx, u.url); err != nil || off != 0 {
			t.Fatalf("%s: offset %d, %v", u.name, off, err)
		}
	}
	if _, err := a1.PatchUpload(ctx, again, 0, data); err != nil {
		t.Fatalf("the new upload does not complete: %v", err)
	}
}
