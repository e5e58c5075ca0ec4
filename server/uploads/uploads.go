// Package uploads serves resumable photo uploads: tus 1.0 (PROTOCOL.md
// section 6a) with tusd's handler, its file store and an in-memory locker.
//
// On a 2G link cut every 40 KB a photo sent in one request never arrives;
// with tus the bytes received before a cut stay on disk and the next
// request goes on from there. This package adds what tusd leaves to its
// user: who may touch an upload (the user and device that created it),
// what may be uploaded (a photo named by its SHA-256, at most
// syncproto.MaxBlobBytes, within the device's photo quota for the day),
// how many unfinished uploads a device may keep, when they expire, and
// what happens at the end: the file is checked and
// moved into the store's blobs (Blobs.PutBlobFile) inside tusd's
// pre-finish callback, so the answer to the last PATCH says whether the
// photo was stored.
//
// Uploads live under Config.Dir, one directory per device:
// DIR/<device id>/<upload id> holds the bytes and DIR/<device id>/<upload
// id>.info tusd's JSON description. The .info file's modification time is
// the upload's last touch by the server's clock (Config.Now), which Sweep
// compares with Config.Expiry.
package uploads

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	tusslog "golang.org/x/exp/slog"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Defaults of Config.
const (
	// DefaultExpiry is how long an unfinished upload is kept untouched: a
	// day covers a cadre out of signal until the next morning.
	DefaultExpiry = 24 * time.Hour
	// DefaultMaxPerDevice caps a device's unfinished uploads: a phone
	// sends its photos one after another, so 16 leaves room for several
	// interrupted ones, and 16 x 8 MiB bounds what one device can leave
	// on disk.
	DefaultMaxPerDevice = 16
)

// Config tunes the uploads.
type Config struct {
	// Dir holds the unfinished uploads; it must be on the store's file
	// system, so a finished one is renamed into the blobs, not copied.
	Dir string
	// Expiry is how long an upload may stay untouched before Sweep
	// deletes it; DefaultExpiry when 0.
	Expiry time.Duration
	// MaxPerDevice caps a device's unfinished uploads;
	// DefaultMaxPerDevice when 0.
	MaxPerDevice int
	// Now is the clock of the last touch and of expiry; time.Now when nil.
	Now func() time.Time
}

// Blobs is where finished uploads go: the store.
type Blobs interface {
	// PutBlobFile checks the file at path against sum and moves it into
	// the blobs; invalid_request when its SHA-256 is another,
	// payload_too_large when it is too big. A photo already held is a
	// no-op that leaves the file.
	PutBlobFile(ctx context.Context, actor syncproto.Actor, sum, contentType, path string) (*store.BlobMeta, error)
	// PhotoRoom refuses, with photo_quota_exceeded, a photo of size
	// bytes past the device's quota for today.
	PhotoRoom(actor syncproto.Actor, size int64) error
}

var _ Blobs = (*store.Store)(nil)

// Service serves and keeps the uploads. Create it with New.
type Service struct {
	cfg   Config
	files filestore.FileStore
	tus   *handler.UnroutedHandler
	serve http.Handler
	blobs Blobs

	mu sync.Mutex
	// active counts the requests in flight per upload id; -1 marks one
	// the sweep is deleting.
	active map[string]int
	// devices serializes the creations of each device, so the cap holds
	// exactly, and the sweep's removal of an empty device directory.
	devices map[string]*deviceLock
}

type deviceLock struct {
	mu    sync.Mutex
	users int
}

// New makes the uploads directory and the tus handler.
func New(cfg Config, blobs Blobs) (*Service, error) {
	if cfg.Dir == "" {
		return nil, errors.New("uploads: no directory")
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.MaxPerDevice <= 0 {
		cfg.MaxPerDevice = DefaultMaxPerDevice
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create uploads directory: %w", err)
	}
	s := &Service{cfg: cfg, blobs: blobs, active: map[string]int{}, devices: map[string]*deviceLock{}}
	// Photos are personal data: readable by the server's user only.
	s.files = filestore.FileStore{Path: cfg.Dir, DirModePerm: 0o700, FileModePerm: 0o600}
	composer := handler.NewStoreComposer()
	// Only what section 6a offers: no concatenation, no deferred length,
	// no download of an unfinished upload.
	composer.UseCore(s.files)
	composer.UseTerminater(s.files)
	memorylocker.New().UseIn(composer)
	tus, err := handler.NewUnroutedHandler(handler.Config{
		StoreComposer:             composer,
		BasePath:                  syncproto.UploadsPath,
		MaxSize:                   syncproto.MaxBlobBytes,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &handler.CorsConfig{Disable: true},
		PreUploadCreateCallback:   s.created,
		PreFinishResponseCallback: s.finished,
		// tusd logs raw paths and bodies per request; the server logs each
		// request once itself, by route, and the failures it must see
		// come back to it as errors (Serve).
		Logger: tusslog.New(tusslog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("tus handler: %w", err)
	}
	s.tus = tus
	s.serve = tus.Middleware(http.HandlerFunc(s.dispatch))
	return s, nil
}

// request is what Serve tells tusd's callbacks about one request; it
// travels in the request's context, which tusd keeps.
type request struct {
	actor syncproto.Actor
	// sum, contentType and length are a creation's checked metadata.
	sum, contentType string
	length           int64
	// id is the upload the request is about; a creation learns it in
	// created.
	id string
	// err is a callback's refusal, for Serve to return as it is.
	err error
}

type requestKey struct{}

func requestOf(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

var errNoUpload = syncproto.Errorf(syncproto.CodeNotFound, "no such upload: it expired, finished or was never made; create a new one")

// Serve answers one tus request of actor under syncproto.UploadsPath:
// POST creates, HEAD gives the offset, PATCH appends, DELETE ends. It
// returns an error before anything is written (an error of ours, or
// tusd's refusal turned into a *syncproto.Error; any other error is the
// server's fault), and nil once tusd has answered. An upload of another
// user or device does not exist for the caller.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, actor syncproto.Actor) error {
	rest, ok := strings.CutPrefix(r.URL.Path, strings.TrimSuffix(syncproto.UploadsPath, "/"))
	if !ok {
		return errNoUpload
	}
	rest = strings.TrimPrefix(rest, "/")
	req := &request{actor: actor}
	switch {
	case rest == "" && r.Method == http.MethodPost:
		if err := checkTus(r); err != nil {
			return err
		}
		if err := checkCreation(r.Header, req); err != nil {
			return err
		}
		// Refused before any byte is on disk; the store checks again
		// when the photo is complete.
		if err := s.blobs.PhotoRoom(actor, req.length); err != nil {
			return err
		}
		// Held until tusd has made the upload (and taken the bytes of a
		// creation-with-upload): a device's creations queue, so two at
		// once cannot both pass the cap.
		release, err := s.reserve(actor.DeviceID, req.sum)
		if err != nil {
			return err
		}
		defer release()
	case rest == "":
		return syncproto.Errorf(syncproto.CodeInvalidRequest, "create an upload with POST %s", syncproto.UploadsPath)
	case r.Method == http.MethodHead || r.Method == http.MethodPatch || r.Method == http.MethodDelete:
		if !s.owns(r.Context(), rest, actor) {
			return errNoUpload
		}
		if err := checkTus(r); err != nil {
			return err
		}
		if r.Method == http.MethodPatch {
			if err := checkPatch(r.Header); err != nil {
				return err
			}
		}
		if !s.begin(rest) {
			return errNoUpload
		}
		defer s.end(rest)
		req.id = rest
		if r.Method == http.MethodPatch {
			// A long PATCH is not idle: keep the sweep off it from its
			// start.
			s.touch(rest)
		}
	default:
		return syncproto.Errorf(syncproto.CodeInvalidRequest, "an upload takes HEAD, PATCH or DELETE")
	}

	// tusd routes by the upload id alone, and would let a header turn a
	// POST into another method after the checks above.
	tr := r.WithContext(context.WithValue(r.Context(), requestKey{}, req))
	u := *r.URL
	u.Path, u.RawPath = rest, ""
	tr.URL = &u
	tr.Header = r.Header.Clone()
	tr.Header.Del("X-HTTP-Method-Override")
	rec := &response{ResponseWriter: w}
	s.serve.ServeHTTP(rec, tr)
	if req.id != "" && r.Method != http.MethodHead && r.Method != http.MethodDelete {
		// Whatever arrived, this request touched the upload.
		s.touch(req.id)
	}
	if rec.status == 0 {
		return nil
	}
	if req.err != nil {
		return req.err
	}
	return tusError(rec.status, rec.body.String())
}

// dispatch routes a request Serve checked to tusd.
func (s *Service) dispatch(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.tus.PostFile(w, r)
	case http.MethodHead:
		s.tus.HeadFile(w, r)
	case http.MethodPatch:
		s.tus.PatchFile(w, r)
	case http.MethodDelete:
		s.tus.DelFile(w, r)
	}
}

// checkTus refuses a request without Tus-Resumable: 1.0.0 before tusd
// does, in the protocol's error format (tus answers 412 there).
func checkTus(r *http.Request) error {
	if r.Method == http.MethodHead {
		return nil
	}
	if v := r.Header.Get(syncproto.HeaderTusResumable); v != syncproto.TusVersion {
		return syncproto.Errorf(syncproto.CodeUnsupportedProtocol, "uploads speak tus %s: send Tus-Resumable: %s", syncproto.TusVersion, syncproto.TusVersion).With("field", syncproto.HeaderTusResumable)
	}
	return nil
}

// checkCreation checks a POST's length and metadata, and keeps them in req.
func checkCreation(h http.Header, req *request) error {
	if h.Get("Upload-Defer-Length") != "" || h.Get("Upload-Concat") != "" {
		return syncproto.InvalidField(syncproto.HeaderUploadLength, "an upload gives its Upload-Length at creation; Upload-Defer-Length and Upload-Concat are not offered")
	}
	v := h.Get(syncproto.HeaderUploadLength)
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case v == "" || err != nil || n < 0:
		return syncproto.InvalidField(syncproto.HeaderUploadLength, "Upload-Length must be the photo's size in bytes")
	case n == 0:
		return syncproto.InvalidField(syncproto.HeaderUploadLength, "a photo is not empty")
	case n > syncproto.MaxBlobBytes:
		return syncproto.Errorf(syncproto.CodePayloadTooLarge, "a photo may be at most %d bytes", syncproto.MaxBlobBytes).With("field", syncproto.HeaderUploadLength)
	}
	meta := handler.ParseMetadataHeader(h.Get(syncproto.HeaderUploadMetadata))
	req.sum = meta[syncproto.UploadMetaSHA256]
	if !syncproto.ValidSHA256(req.sum) {
		return syncproto.InvalidField(syncproto.HeaderUploadMetadata, "Upload-Metadata must carry %s, the photo's lowercase hex SHA-256", syncproto.UploadMetaSHA256)
	}
	mt, _, _ := mime.ParseMediaType(meta[syncproto.UploadMetaContentType])
	if !syncproto.ValidPhotoType(mt) {
		return syncproto.InvalidField(syncproto.HeaderUploadMetadata, "Upload-Metadata must carry %s, image/jpeg or image/png", syncproto.UploadMetaContentType)
	}
	req.contentType, req.length = mt, n
	return nil
}

// checkPatch checks a PATCH's headers before tusd does, so the common
// mistakes are answered in the protocol's error format.
func checkPatch(h http.Header) error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != syncproto.MediaOffsetOctetStream {
		return syncproto.InvalidField("Content-Type", "a PATCH's Content-Type is %s", syncproto.MediaOffsetOctetStream)
	}
	if off, err := strconv.ParseInt(h.Get(syncproto.HeaderUploadOffset), 10, 64); err != nil || off < 0 {
		return syncproto.InvalidField(syncproto.HeaderUploadOffset, "Upload-Offset must be the offset a HEAD gave")
	}
	return nil
}

// created names a new upload after its device and keeps only the
// metadata Serve checked, with its owner.
func (s *Service) created(hook handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	req := requestOf(hook.Context)
	if req == nil || req.sum == "" {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errors.New("uploads: a creation that Serve did not check")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, fmt.Errorf("upload id: %w", err)
	}
	req.id = req.actor.DeviceID + "/" + hex.EncodeToString(b[:])
	return handler.HTTPResponse{}, handler.FileInfoChanges{
		ID: req.id,
		MetaData: handler.MetaData{
			syncproto.UploadMetaSHA256:      req.sum,
			syncproto.UploadMetaContentType: req.contentType,
			metaUser:                        req.actor.UserID,
		},
	}, nil
}

// metaUser is the metadata key of the user who created an upload.
const metaUser = "user"

// finished stores a complete upload as its photo, or refuses it. Either
// way the upload is over and deleted: a refused file is not the photo, and
// a stored one has moved into the blobs.
func (s *Service) finished(hook handler.HookEvent) (handler.HTTPResponse, error) {
	req := requestOf(hook.Context)
	info := hook.Upload
	if req == nil {
		return handler.HTTPResponse{}, errors.New("uploads: a request that Serve did not check")
	}
	_, err := s.blobs.PutBlobFile(hook.Context, req.actor, info.MetaData[syncproto.UploadMetaSHA256], info.MetaData[syncproto.UploadMetaContentType], s.binPath(info.ID))
	if rerr := s.remove(info.ID); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		req.err = err
		status := http.StatusInternalServerError
		if perr := syncproto.AsError(err); perr != nil {
			status = perr.Status()
		}
		// tusd answers with this status; Serve replaces its body with
		// req.err in the protocol's format.
		return handler.HTTPResponse{}, handler.NewError("ERR_FIELDSYNC", err.Error(), status)
	}
	return handler.HTTPResponse{}, nil
}

// owns reports whether id names an upload of actor: under their device's
// directory, and created by their user.
func (s *Service) owns(ctx context.Context, id string, actor syncproto.Actor) bool {
	device, name, ok := strings.Cut(id, "/")
	if !ok || device != actor.DeviceID || !validName(name) {
		return false
	}
	up, err := s.files.GetUpload(ctx, id)
	if err != nil {
		return false
	}
	info, err := up.GetInfo(ctx)
	return err == nil && info.MetaData[metaUser] == actor.UserID
}

// validName reports whether name is an upload's name as created makes it,
// so no id reaches the file system that could climb out of Dir.
func validName(name string) bool {
	if len(name) != 32 {
		return false
	}
	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// reserve holds the device's creation lock and refuses a creation past the
// cap with rate_limited, retrying when the device's oldest upload expires.
// The device's unfinished uploads of the same photo (sum) are deleted
// first: a phone uploads a photo once at a time, so an older one is a
// creation whose answer the link lost, which nothing would resume.
func (s *Service) reserve(device, sum string) (release func(), err error) {
	unlock := s.lockDevice(device)
	all, err := s.list(device)
	if err != nil {
		unlock()
		return nil, err
	}
	var ups []upload
	for _, u := range all {
		if !u.info {
			continue
		}
		if id := device + "/" + u.name; s.photoOf(id) == sum && s.claim(id) {
			err := s.remove(id)
			s.unclaim(id)
			if err == nil {
				continue
			}
		}
		ups = append(ups, u)
	}
	if len(ups) < s.cfg.MaxPerDevice {
		return unlock, nil
	}
	unlock()
	oldest := ups[0].touched
	for _, u := range ups[1:] {
		if u.touched.Before(oldest) {
			oldest = u.touched
		}
	}
	wait := max(oldest.Add(s.cfg.Expiry).Sub(s.cfg.Now()), time.Second)
	return nil, syncproto.Errorf(syncproto.CodeRateLimited,
		"this device has %d unfinished uploads, the most it may keep: finish or delete one, or retry when the oldest expires", len(ups)).
		With("max_uploads", s.cfg.MaxPerDevice).With("retry_after", int64((wait+time.Second-1)/time.Second))
}

// photoOf is the photo an upload is for, from its .info file; "" when it
// cannot be read.
func (s *Service) photoOf(id string) string {
	data, err := os.ReadFile(s.infoPath(id))
	if err != nil {
		return ""
	}
	var info handler.FileInfo
	if json.Unmarshal(data, &info) != nil {
		return ""
	}
	return info.MetaData[syncproto.UploadMetaSHA256]
}

func (s *Service) lockDevice(device string) (unlock func()) {
	s.mu.Lock()
	d := s.devices[device]
	if d == nil {
		d = &deviceLock{}
		s.devices[device] = d
	}
	d.users++
	s.mu.Unlock()
	d.mu.Lock()
	return func() {
		d.mu.Unlock()
		s.mu.Lock()
		if d.users--; d.users == 0 {
			delete(s.devices, device)
		}
		s.mu.Unlock()
	}
}

// begin counts a request on an upload; false while the sweep deletes it.
func (s *Service) begin(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[id] < 0 {
		return false
	}
	s.active[id]++
	return true
}

func (s *Service) end(id string) {
	s.mu.Lock()
	if s.active[id]--; s.active[id] == 0 {
		delete(s.active, id)
	}
	s.mu.Unlock()
}

func (s *Service) binPath(id string) string  { return filepath.Join(s.cfg.Dir, filepath.FromSlash(id)) }
func (s *Service) infoPath(id string) string { return s.binPath(id) + ".info" }

// touch sets the upload's last touch to now by the server's clock.
func (s *Service) touch(id string) {
	now := s.cfg.Now()
	// An upload already gone (finished, deleted) has nothing to touch.
	_ = os.Chtimes(s.infoPath(id), now, now)
}

// remove deletes an upload's files; ones already gone are no error.
func (s *Service) remove(id string) error {
	var errs []error
	for _, p := range []string{s.binPath(id), s.infoPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove upload: %w", err))
		}
	}
	return errors.Join(errs...)
}

// upload is an upload as the sweep and the cap see it on disk.
type upload struct {
	name    string
	touched time.Time
	// info is whether its .info file exists: a data file without one is
	// the leftover of a creation cut short.
	info bool
}

// Sweep deletes the uploads untouched for Config.Expiry, and the leftovers
// of creations cut short; an upload with a request in flight is kept. It
// returns how many it deleted.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	devices, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return 0, fmt.Errorf("list uploads: %w", err)
	}
	removed := 0
	var errs []error
	for _, d := range devices {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if !d.IsDir() {
			continue
		}
		n, err := s.sweepDevice(d.Name())
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

func (s *Service) sweepDevice(device string) (int, error) {
	ups, err := s.list(device)
	if err != nil {
		return 0, err
	}
	cutoff := s.cfg.Now().Add(-s.cfg.Expiry)
	removed := 0
	var errs []error
	for _, u := range ups {
		if !u.touched.Before(cutoff) {
			continue
		}
		id := device + "/" + u.name
		if !s.claim(id) {
			continue
		}
		err := s.remove(id)
		s.unclaim(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	// An empty directory goes too, under the device's lock so no creation
	// is about to write into it.
	unlock := s.lockDevice(device)
	defer unlock()
	if left, err := os.ReadDir(filepath.Join(s.cfg.Dir, device)); err == nil && len(left) == 0 {
		_ = os.Remove(filepath.Join(s.cfg.Dir, device))
	}
	return removed, errors.Join(errs...)
}

// list returns a device's uploads with their last touch, the leftovers
// of creations cut short included; none for a device without a directory.
func (s *Service) list(device string) ([]upload, error) {
	entries, err := os.ReadDir(filepath.Join(s.cfg.Dir, device))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	byName := map[string]*upload{}
	for _, e := range entries {
		name, isInfo := strings.CutSuffix(e.Name(), ".info")
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue // removed meanwhile, or not ours
		}
		u := byName[name]
		if u == nil {
			u = &upload{name: name}
			byName[name] = u
		}
		// The .info file's time is the last touch; a data file's counts
		// only for a leftover without one.
		if isInfo {
			u.info, u.touched = true, fi.ModTime()
		} else if !u.info {
			u.touched = fi.ModTime()
		}
	}
	out := make([]upload, 0, len(byName))
	for _, u := range byName {
		out = append(out, *u)
	}
	return out, nil
}

// claim marks an upload for deletion; false while a request is on it.
func (s *Service) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[id] != 0 {
		return false
	}
	s.active[id] = -1
	return true
}

func (s *Service) unclaim(id string) {
	s.mu.Lock()
	delete(s.active, id)
	s.mu.Unlock()
}

// response passes tusd's successful answers through, with Location made a
// path (tusd builds it from the request's Host and scheme, which behind a
// TLS proxy would say http://), and holds back its error answers, for
// Serve to turn into the protocol's format.
type response struct {
	http.ResponseWriter
	// status is tusd's error status; 0 while it answers normally.
	status int
	body   bytes.Buffer
}

func (r *response) WriteHeader(code int) {
	h := r.Header()
	if loc := h.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			h.Set("Location", u.EscapedPath())
		}
	}
	if code >= 400 {
		r.status = code
		h.Del("Content-Type")
		h.Del("Content-Length")
		return
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *response) Write(p []byte) (int, error) {
	if r.status != 0 {
		if room := 1024 - r.body.Len(); room > 0 {
			r.body.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets tusd's http.ResponseController reach the connection, to
// extend the read deadline while bytes keep coming.
func (r *response) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// tusError turns tusd's error answer ("ERR_CODE: message") into the
// protocol's error. A 5xx is the server's fault: it goes back as a plain
// error, which the server logs and answers as unavailable.
func tusError(status int, body string) error {
	code, msg, _ := strings.Cut(strings.TrimSpace(body), ": ")
	if status >= 500 {
		return fmt.Errorf("tus %d %s: %s", status, code, msg)
	}
	var e *syncproto.Error
	switch code {
	case "ERR_UPLOAD_NOT_FOUND":
		e = errNoUpload
	case "ERR_MISMATCHED_OFFSET":
		e = syncproto.Errorf(syncproto.CodeOutOfOrder, "Upload-Offset is not where the upload stands: HEAD it for its offset")
	case "ERR_UPLOAD_SIZE_EXCEEDED", "ERR_MAX_SIZE_EXCEEDED":
		e = syncproto.Errorf(syncproto.CodePayloadTooLarge, "the bytes go past the upload's Upload-Length")
	default:
		e = &syncproto.Error{Code: syncproto.CodeForStatus(status), Message: "the upload request was refused: " + msg}
	}
	return e.With("tus_error", code)
}
