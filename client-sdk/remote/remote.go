// Package remote is the HTTP side of the fieldsync protocol as a Go client:
// one method per endpoint of PROTOCOL.md, in JSON or MessagePack. The SDK
// syncs through it; tests, examples and load programs drive the server
// with it. It holds no state but the access token it is given.
package remote

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Client calls a fieldsync server. Set Token after login; it is safe for
// concurrent use.
type Client struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8080", or a city
	// behind a province's proxy, "https://province.example/4110": every
	// request's path follows it. Of a server with several addresses
	// (New's more), it is the first; Address says which one is in use.
	BaseURL string
	// Codec is the body encoding; MessagePack when nil.
	Codec syncproto.Codec
	// HTTP is the transport; http.DefaultClient when nil.
	HTTP *http.Client
	// Gzip compresses request bodies over 1 KiB.
	Gzip bool

	// more are the server's other addresses, tried in turn after a
	// connection failure (addresses.go); cur is the index of the one in
	// use, 0 being BaseURL.
	more []string
	cur  atomic.Int64

	mu    sync.RWMutex
	token string
	// Stats counts body bytes on the wire, for the load program.
	stats Stats
}

// Stats counts body bytes sent and received.
type Stats struct {
	BytesOut, BytesIn int64
}

// New returns a client for baseURL speaking MessagePack. more are other
// addresses of the same server (the nodes of a city's cluster), tried in
// turn when one fails to answer; see addresses.go.
func New(baseURL string, more ...string) *Client {
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/"), Codec: syncproto.Msgpack}
	for _, m := range more {
		m = strings.TrimRight(m, "/")
		if m != c.BaseURL && !slices.Contains(c.more, m) {
			c.more = append(c.more, m)
		}
	}
	return c
}

// SetToken sets the access token sent as Authorization: Bearer.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
}

// Token is the access token in use.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// Stats returns the body bytes counted so far.
func (c *Client) Stats() Stats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.stats
}

func (c *Client) codec() syncproto.Codec {
	if c.Codec == nil {
		return syncproto.Msgpack
	}
	return c.Codec
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

// Do sends in (encoded) to path with method and decodes the answer into out.
// An error answer is returned as *syncproto.Error; a transport failure as
// the transport's error. A server with several addresses is tried at each
// in turn while they fail to answer (addresses.go).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = c.codec().Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	return c.DoRaw(ctx, method, path, c.codec().MediaType(), body, out)
}

// DoRaw sends body as it is with the given Content-Type.
func (c *Client) DoRaw(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	encoding := ""
	sent := len(body)
	if body != nil {
		// Photos are compressed already; protocol bodies compress well.
		if c.Gzip && len(body) > 1024 && !strings.HasPrefix(contentType, "image/") {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body, encoding, sent = buf.Bytes(), "gzip", buf.Len()
		}
	}
	return c.each(ctx, true, func(base string) error {
		return c.send(ctx, base, method, path, contentType, encoding, body, sent, out)
	})
}

// send is DoRaw's request to one address, its body already encoded.
func (c *Client) send(ctx context.Context, base, method, path, contentType, encoding string, body []byte, sent int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("Accept", c.codec().MediaType())
	req.Header.Set(syncproto.HeaderProtocol, syncproto.ProtocolVersion)
	if t := c.Token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &transportError{fmt.Errorf("%s %s: read response: %w", method, path, err)}
	}
	c.mu.Lock()
	c.stats.BytesOut += int64(sent)
	c.stats.BytesIn += int64(len(data))
	c.mu.Unlock()
	if resp.StatusCode >= 400 {
		return decodeError(resp, data)
	}
	if out == nil {
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = data
		return nil
	}
	codec := syncproto.CodecFor(resp.Header.Get("Content-Type"))
	if codec == nil {
		return fmt.Errorf("%s %s: unexpected Content-Type %q", method, path, resp.Header.Get("Content-Type"))
	}
	if err := codec.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// decodeError reads the protocol's error envelope; a body without one (a
// proxy's page) becomes the code its status implies.
func decodeError(resp *http.Response, data []byte) error {
	var env syncproto.ErrorEnvelope
	ra := resp.Header.Get("Retry-After")
	if codec := syncproto.CodecFor(resp.Header.Get("Content-Type")); codec != nil {
		if codec.Unmarshal(data, &env) == nil && env.Error != nil && env.Error.Code != "" {
			return &StatusError{Status: resp.StatusCode, Err: env.Error, RetryAfter: ra}
		}
	}
	e := &syncproto.Error{Code: syncproto.CodeForStatus(resp.StatusCode), Message: fmt.Sprintf("the server answered %s", resp.Status)}
	return &StatusError{Status: resp.StatusCode, Err: e, RetryAfter: ra}
}

// StatusError is an error answer: the HTTP status and the protocol error.
type StatusError struct {
	Status int
	Err    *syncproto.Error
	// RetryAfter is the answer's Retry-After header as sent (seconds or
	// an HTTP date), "" when it had none.
	RetryAfter string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Err.Error()) }

// Unwrap lets errors.As find the *syncproto.Error.
func (e *StatusError) Unwrap() error { return e.Err }

// Health calls GET /v1/healthz.
func (c *Client) Health(ctx context.Context) error {
	var h syncproto.Health
	return c.Do(ctx, http.MethodGet, "/v1/healthz", nil, &h)
}

// Login signs in and keeps the access token.
func (c *Client) Login(ctx context.Context, req syncproto.LoginRequest) (*syncproto.TokenResponse, error) {
	var resp syncproto.TokenResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/login", req, &resp); err != nil {
		return nil, err
	}
	c.SetToken(resp.AccessToken)
	return &resp, nil
}

// Refresh rotates the refresh token and keeps the new access token.
func (c *Client) Refresh(ctx context.Context, req syncproto.RefreshRequest) (*syncproto.TokenResponse, error) {
	var resp syncproto.TokenResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/refresh", req, &resp); err != nil {
		return nil, err
	}
	c.SetToken(resp.AccessToken)
	return &resp, nil
}

// Logout ends this device's refresh chain.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/v1/auth/logout", struct{}{}, nil)
}

// Push sends ops.
func (c *Client) Push(ctx context.Context, req syncproto.PushRequest) (*syncproto.PushResponse, error) {
	var resp syncproto.PushResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/sync/push", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Pull fetches a page of changes.
func (c *Client) Pull(ctx context.Context, req syncproto.PullRequest) (*syncproto.PullResponse, error) {
	var resp syncproto.PullResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/sync/pull", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ImportFeed imports warnings.
func (c *Client) ImportFeed(ctx context.Context, rows []syncproto.FeedWarning) (*syncproto.FeedResponse, error) {
	var resp syncproto.FeedResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/feed/warnings", syncproto.FeedRequest{Warnings: rows}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ImportFeedCSV imports a CSV feed.
func (c *Client) ImportFeedCSV(ctx context.Context, csv []byte) (*syncproto.FeedResponse, error) {
	var resp syncproto.FeedResponse
	if err := c.DoRaw(ctx, http.MethodPost, "/v1/feed/warnings", syncproto.MediaCSV, csv, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// UpsertUnits creates or renames units.
func (c *Client) UpsertUnits(ctx context.Context, units []syncproto.UnitInput) (*syncproto.UnitsResponse, error) {
	var resp syncproto.UnitsResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/admin/units", syncproto.UnitsRequest{Units: units}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// UpsertUsers creates or updates users.
func (c *Client) UpsertUsers(ctx context.Context, users []syncproto.UserInput) (*syncproto.UsersResponse, error) {
	var resp syncproto.UsersResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/admin/users", syncproto.UsersRequest{Users: users}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RevokeDevice stops a device, with or without wipe.
func (c *Client) RevokeDevice(ctx context.Context, deviceID string, wipe bool) (*syncproto.RevokeResponse, error) {
	var resp syncproto.RevokeResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/admin/devices/"+deviceID+"/revoke", syncproto.RevokeRequest{Wipe: wipe}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// PutBlob uploads a photo under its SHA-256.
func (c *Client) PutBlob(ctx context.Context, sum, contentType string, data []byte) (*syncproto.BlobResponse, error) {
	var resp syncproto.BlobResponse
	if err := c.DoRaw(ctx, http.MethodPut, "/v1/blobs/"+sum, contentType, data, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// GetBlob downloads a photo.
func (c *Client) GetBlob(ctx context.Context, sum string) ([]byte, error) {
	var data []byte
	if err := c.DoRaw(ctx, http.MethodGet, "/v1/blobs/"+sum, "", nil, &data); err != nil {
		return nil, err
	}
	return data, nil
}

// Feedback fetches outcomes changed after cursor in the caller's unit.
func (c *Client) Feedback(ctx context.Context, cursor string, limit int) (*syncproto.FeedbackResponse, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/feedback"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp syncproto.FeedbackResponse
	if err := c.Do(ctx, http.MethodGet, path, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Resumable photo uploads (PROTOCOL.md section 6a): tus 1.0. An upload is
// created for one photo and named by the URL the server gives; its bytes
// go in PATCH requests from the offset a HEAD reports. Bytes received
// before a connection is cut stay on the server, so a photo crosses a link
// cut every 40 KB by resuming instead of restarting.

// CreateUpload creates an upload of size bytes of the photo sum
// (POST /v1/uploads/) and returns its absolute URL, to keep for resuming.
func (c *Client) CreateUpload(ctx context.Context, sum, contentType string, size int64) (string, error) {
	h := http.Header{}
	h.Set(syncproto.HeaderUploadLength, strconv.FormatInt(size, 10))
	h.Set(syncproto.HeaderUploadMetadata, uploadMetadata(map[string]string{
		syncproto.UploadMetaSHA256:      sum,
		syncproto.UploadMetaContentType: contentType,
	}))
	resp, base, err := c.tus(ctx, http.MethodPost, "", h, nil)
	if err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("POST %s: the answer names no upload (no Location)", syncproto.UploadsPath)
	}
	return resolve(loc, base)
}

// UploadOffset returns how many bytes of the upload at url the server
// holds (HEAD). A *StatusError of 404 or 410 means the server no longer
// knows the upload (expired, finished, or another device's): create a new
// one.
func (c *Client) UploadOffset(ctx context.Context, url string) (int64, error) {
	resp, _, err := c.tus(ctx, http.MethodHead, url, nil, nil)
	if err != nil {
		return 0, err
	}
	return parseOffset(http.MethodHead, resp)
}

// PatchUpload sends data as the upload's bytes from offset (PATCH), which
// must be the offset the server holds, and returns the server's new
// offset. The last PATCH's answer says whether the photo was stored: a
// photo whose bytes do not hash to the sum it was created with is refused
// (invalid_request) and its upload deleted.
func (c *Client) PatchUpload(ctx context.Context, url string, offset int64, data []byte) (int64, error) {
	h := http.Header{}
	h.Set("Content-Type", syncproto.MediaOffsetOctetStream)
	h.Set(syncproto.HeaderUploadOffset, strconv.FormatInt(offset, 10))
	resp, _, err := c.tus(ctx, http.MethodPatch, url, h, data)
	if err != nil {
		return 0, err
	}
	return parseOffset(http.MethodPatch, resp)
}

// DeleteUpload ends an unfinished upload (DELETE), freeing its place among
// the device's unfinished uploads.
func (c *Client) DeleteUpload(ctx context.Context, url string) error {
	_, _, err := c.tus(ctx, http.MethodDelete, url, nil, nil)
	return err
}

// UploadBlob sends the photo data (its SHA-256 sum, hex) by a resumable
// upload and returns nil once the server has stored it. url is the upload
// a previous call created, or "" to create one; onCreated, when not nil,
// hears each new upload's URL, for the caller to persist and pass as url
// to the next call. A call HEADs for the offset and sends the rest in one
// PATCH: when the connection is cut the bytes that arrived stay on the
// server, and the next call goes on from there. An upload the server no
// longer knows (404 or 410: expired) is replaced by a new one. Sending a
// photo the server already holds completes all the same.
func (c *Client) UploadBlob(ctx context.Context, url, sum, contentType string, data []byte, onCreated func(url string)) error {
	var offset int64
	if url != "" {
		off, err := c.UploadOffset(ctx, url)
		switch {
		case err == nil:
			offset = off
		case UploadGone(err):
			url = ""
		default:
			return err
		}
	}
	if url == "" {
		created, err := c.CreateUpload(ctx, sum, contentType, int64(len(data)))
		if err != nil {
			return err
		}
		url, offset = created, 0
		if onCreated != nil {
			onCreated(url)
		}
	}
	if offset > int64(len(data)) {
		return fmt.Errorf("upload %s holds %d bytes, more than the photo's %d: it is another photo's upload", url, offset, len(data))
	}
	if offset == int64(len(data)) {
		return nil
	}
	_, err := c.PatchUpload(ctx, url, offset, data[offset:])
	return err
}

// UploadGone reports whether err says the server no longer knows an
// upload (404 or 410: it expired, or it completed).
func UploadGone(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusGone)
}

// tus sends one tus request to url (absolute, or a path on the server;
// "" is the uploads' collection, for a creation) with the access token and
// Tus-Resumable, and returns the answer, whose body is read and closed, and
// the address that answered. An error answer is a *StatusError.
//
// Of a server with several addresses, an upload made at one is asked for
// at whichever is in use, under the same path: the nodes of one city share
// its uploads, or answer 404 for one they do not know, and the caller then
// makes a new one (tus has no way to move an upload). A PATCH that fails at
// one address is not sent again at the next, since the server may hold
// some of its bytes: the caller asks the offset again (HEAD), there.
func (c *Client) tus(ctx context.Context, method, url string, h http.Header, body []byte) (*http.Response, string, error) {
	var resp *http.Response
	var used string
	err := c.each(ctx, method != http.MethodPatch, func(base string) error {
		var err error
		resp, err = c.tusAt(ctx, base, method, url, h, body)
		used = base
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return resp, used, nil
}

// tusAt is tus at the address base.
func (c *Client) tusAt(ctx context.Context, base, method, url string, h http.Header, body []byte) (*http.Response, error) {
	target := base + syncproto.UploadsPath
	if url != "" {
		var err error
		if target, err = c.uploadURL(url, base); err != nil {
			return nil, err
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set(syncproto.HeaderTusResumable, syncproto.TusVersion)
	req.Header.Set(syncproto.HeaderProtocol, syncproto.ProtocolVersion)
	req.Header.Set("Accept", c.codec().MediaType())
	if t := c.Token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, &transportError{fmt.Errorf("%s upload: %w", method, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &transportError{fmt.Errorf("%s upload: read response: %w", method, err)}
	}
	c.mu.Lock()
	c.stats.BytesOut += int64(len(body))
	c.stats.BytesIn += int64(len(data))
	c.mu.Unlock()
	if resp.StatusCode >= 400 {
		return nil, decodeError(resp, data)
	}
	return resp, nil
}

// uploadURL is the upload at raw (absolute, or a path on the address in
// use) at the address base: raw must be under one of the server's
// addresses, and its path after that address's goes after base's. It
// refuses an upload on another server, or outside every address's path:
// the access token goes only where the addresses point, and behind a
// province's proxy another path is another city.
func (c *Client) uploadURL(raw, base string) (string, error) {
	abs, err := resolve(raw, c.Address())
	if err != nil {
		return "", err
	}
	u, err := url.Parse(abs)
	if err != nil {
		return "", fmt.Errorf("upload URL: %w", err)
	}
	// The longest matching address: two may share a host, one's path
	// inside the other's.
	rest, found := "", -1
	for _, a := range c.Addresses() {
		b, err := url.Parse(a + "/")
		if err != nil {
			return "", fmt.Errorf("server address: %w", err)
		}
		if u.Scheme == b.Scheme && u.Host == b.Host && strings.HasPrefix(u.Path, b.Path) && len(b.Path) > found {
			rest, found = strings.TrimPrefix(u.Path, b.Path), len(b.Path)
		}
	}
	if found < 0 {
		return "", fmt.Errorf("upload URL %s is not on the server %s", u.Redacted(), c.BaseURL)
	}
	t, err := url.Parse(base + "/")
	if err != nil {
		return "", fmt.Errorf("server address: %w", err)
	}
	t.Path, t.RawPath, t.RawQuery = t.Path+rest, "", u.RawQuery
	return t.String(), nil
}

// resolve makes raw, an upload's URL or path as a server's answer gives
// it, absolute against the address base.
func resolve(raw, base string) (string, error) {
	b, err := url.Parse(base + "/")
	if err != nil {
		return "", fmt.Errorf("server address: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("upload URL: %w", err)
	}
	return b.ResolveReference(u).String(), nil
}

func parseOffset(method string, resp *http.Response) (int64, error) {
	off, err := strconv.ParseInt(resp.Header.Get(syncproto.HeaderUploadOffset), 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("%s upload: the answer has no Upload-Offset", method)
	}
	return off, nil
}

// uploadMetadata encodes tus's Upload-Metadata: "key base64(value)" pairs,
// comma-separated, in a stable order.
func uploadMetadata(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + base64.StdEncoding.EncodeToString([]byte(m[k]))
	}
	return strings.Join(parts, ",")
}
