package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// rawReq is one hand-built HTTP request. Token, when set, is sent as a
// Bearer token; Header entries are set last and so override anything.
type rawReq struct {
	Method      string
	Path        string
	Token       string
	ContentType string
	Accept      string
	Header      map[string]string
	Body        []byte
}

// rawResp is a response as it came off the wire (never decompressed).
type rawResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// rawClient never adds Accept-Encoding nor decompresses by itself, so the
// tests see exactly what the server sent.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}

func send(t *testing.T, baseURL string, r rawReq) rawResp {
	t.Helper()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(context.Background(), method, baseURL+r.Path, body)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if r.Accept != "" {
		req.Header.Set("Accept", r.Accept)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, r.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, r.Path, err)
	}
	return rawResp{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// plainBody is the response body, gunzipped if it was sent gzip.
func (r rawResp) plainBody(t *testing.T) []byte {
	t.Helper()
	if r.Header.Get("Content-Encoding") != "gzip" {
		return r.Body
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("gzip response: %v", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip response: %v", err)
	}
	return data
}

// decode decodes the body into v with the codec the response's Content-Type
// names, failing the test when it names none.
func (r rawResp) decode(t *testing.T, v any) {
	t.Helper()
	codec := syncproto.CodecFor(r.Header.Get("Content-Type"))
	if codec == nil {
		t.Fatalf("status %d: Content-Type %q is neither JSON nor MessagePack; body %q", r.Status, r.Header.Get("Content-Type"), clip(r.Body))
	}
	if err := codec.Unmarshal(r.plainBody(t), v); err != nil {
		t.Fatalf("status %d: decode %s body: %v; body %q", r.Status, codec.MediaType(), err, clip(r.Body))
	}
}

// wantError checks an error answer: the status, the protocol header, and the
// envelope {"error": {code, message}} in the response's own encoding.
func wantError(t *testing.T, r rawResp, status int, code string) *syncproto.Error {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %q", r.Status, status, clip(r.plainBody(t)))
	}
	if v := r.Header.Get(syncproto.HeaderProtocol); v != syncproto.ProtocolVersion {
		t.Errorf("%s header = %q on a %d", syncproto.HeaderProtocol, v, r.Status)
	}
	var env syncproto.ErrorEnvelope
	r.decode(t, &env)
	if env.Error == nil {
		t.Fatalf("status %d without the error envelope: %q", r.Status, clip(r.Body))
	}
	if env.Error.Code != code {
		t.Fatalf("status %d: code %q (%s), want %q", r.Status, env.Error.Code, env.Error.Message, code)
	}
	if strings.TrimSpace(env.Error.Message) == "" {
		t.Errorf("status %d code %s: empty message", r.Status, code)
	}
	if b := string(r.plainBody(t)); strings.Contains(b, "goroutine ") || strings.Contains(b, ".go:") {
		t.Errorf("error body looks like a stack trace: %q", clip(r.Body))
	}
	return env.Error
}

// wantOK checks a 2xx answer with the protocol header and decodes it into v
// (when v is not nil).
func wantOK(t *testing.T, r rawResp, v any) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", r.Status, clip(r.plainBody(t)))
	}
	if h := r.Header.Get(syncproto.HeaderProtocol); h != syncproto.ProtocolVersion {
		t.Errorf("%s header = %q", syncproto.HeaderProtocol, h)
	}
	if v != nil {
		r.decode(t, v)
	}
}

// wantField checks that an invalid_request names the field at fault.
func wantField(t *testing.T, e *syncproto.Error, field string) {
	t.Helper()
	got, _ := e.Details["field"].(string)
	if got != field {
		t.Fatalf("details.field = %q, want %q (message %q)", got, field, e.Message)
	}
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func mustEncode(t *testing.T, codec syncproto.Codec, v any) []byte {
	t.Helper()
	data, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return data
}

// b64 is JWT's base64: URL alphabet, no padding.
var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWT and decodes its header and claims.
func jwtParts(t *testing.T, token string) (header, claims map[string]any, sig string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
	}
	return header, claims, parts[2]
}

// jwtSigningInput encodes a header and claims as the first two parts of a
// compact JWT.
func jwtSigningInput(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(c)
}

// signEdDSA makes a compact JWT signed with key.
func signEdDSA(t *testing.T, key ed25519.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := jwtSigningInput(t, header, claims)
	return in + "." + b64.EncodeToString(ed25519.Sign(key, []byte(in)))
}

// serverKey returns the server's active signing key, read from its store:
// with it a test forges tokens that are well signed but wrong in one other
// way, to show that the signature is not the only check.
func serverKey(t *testing.T, srv *servertest.Server) (kid string, key ed25519.PrivateKey) {
	t.Helper()
	keys, active, err := srv.Store.SigningKeys(context.Background(), func() (store.SigningKey, error) {
		t.Fatal("the server has no signing key")
		return store.SigningKey{}, nil
	})
	if err != nil {
		t.Fatalf("signing keys: %v", err)
	}
	for _, k := range keys {
		if k.ID == active {
			return k.ID, ed25519.NewKeyFromSeed(k.Seed)
		}
	}
	t.Fatalf("active key %q not among the stored keys", active)
	return "", nil
}

// claimSet is JWT claims whose edits chain.
type claimSet map[string]any

func (m claimSet) also(k string, v any) claimSet {
	m[k] = v
	return m
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// wantDenied checks a 401 or 403 with the envelope and a code that fits:
// unauthorized or token_expired, forbidden or device_revoked.
func wantDenied(t *testing.T, r rawResp) *syncproto.Error {
	t.Helper()
	var code, special string
	switch r.Status {
	case http.StatusUnauthorized:
		code, special = syncproto.CodeUnauthorized, syncproto.CodeTokenExpired
	case http.StatusForbidden:
		code, special = syncproto.CodeForbidden, syncproto.CodeDeviceRevoked
	default:
		t.Fatalf("status %d, want 401 or 403: %q", r.Status, clip(r.plainBody(t)))
	}
	var env syncproto.ErrorEnvelope
	r.decode(t, &env)
	if env.Error != nil && env.Error.Code == special {
		code = special
	}
	return wantError(t, r, r.Status, code)
}

// signInAdmin signs the admin in from a new device through the service,
// not over HTTP: for tests of a server whose short timeouts a password
// check could outlast on a busy machine. It returns the tokens and the
// device id.
func signInAdmin(t *testing.T, srv *servertest.Server) (*syncproto.TokenResponse, string) {
	t.Helper()
	device := uuid.NewString()
	login, err := srv.App.Login(context.Background(), &syncproto.LoginRequest{Username: app.AdminUsername, Password: servertest.AdminPassword, DeviceID: device})
	if err != nil {
		t.Fatalf("admin sign-in: %v", err)
	}
	return login, device
}

// mustCreateUpload starts a resumable upload from d of a photo of size
// bytes named hash, and returns the upload's URL.
func mustCreateUpload(t *testing.T, d *servertest.Device, hash, mediaType string, size int64) string {
	t.Helper()
	url, err := d.CreateUpload(context.Background(), hash, mediaType, size)
	if err != nil {
		t.Fatalf("create upload: %v", err)
	}
	return url
}
