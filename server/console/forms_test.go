package console_test

import (
	"bufio"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// bigFile is larger than the 32 MiB that a multipart form keeps in memory,
// so a server that parses it writes a temporary file.
const bigFile = 40 << 20

// filler is an endless run of one byte, for big bodies made on the fly.
type filler byte

func (f filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// multipartBody is a form of the given fields, in order, then a file of
// size bytes: the body, its Content-Type and its length.
func multipartBody(fields [][2]string, size int64) (io.Reader, string, int64) {
	var head strings.Builder
	mw := multipart.NewWriter(&head)
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	_, _ = mw.CreateFormFile("file", "feed.csv")
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	body := io.MultiReader(strings.NewReader(head.String()), io.LimitReader(filler('x'), size), strings.NewReader(tail))
	return body, mw.FormDataContentType(), int64(head.Len()) + size + int64(len(tail))
}

// rawAnswer is a response read off the wire.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// postRaw sends a POST over its own connection, writing the body in the
// background while it reads the answer: a server that answers before it
// has read the body is seen doing so, and one that reads it all first is
// seen too. length -1 sends the body chunked, without a Content-Length.
func postRaw(t *testing.T, base, path string, header http.Header, body io.Reader, length int64) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return sendRaw(t, base, req, length)
}

// sendRaw is postRaw for any request.
func sendRaw(t *testing.T, base string, req *http.Request, length int64) rawAnswer {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req.ContentLength = length
	path := req.URL.Path
	written := make(chan struct{})
	go func() {
		defer close(written)
		// The server may close the connection before the body is sent:
		// the answer read below is what the test judges.
		_ = req.Write(conn)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("POST %s: no answer: %v", path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	<-written
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// wantEnvelope fails unless a is the protocol's error with status and code.
func wantEnvelope(t *testing.T, a rawAnswer, status int, code string) *syncproto.Error {
	t.Helper()
	var env syncproto.ErrorEnvelope
	if err := json.Unmarshal([]byte(a.body), &env); err != nil || env.Error == nil {
		t.Fatalf("answer %d is not the error envelope: %.200q", a.status, a.body)
	}
	if a.status != status || env.Error.Code != code || env.Error.Message == "" {
		t.Fatalf("answer %d %s (%q), want %d %s", a.status, env.Error.Code, env.Error.Message, status, code)
	}
	return env.Error
}

// watchTempDir points the process's temporary directory, where multipart
// parsing spills files, at a directory of the test's own.
func watchTempDir(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

// wantNoTempFiles fails if anything was left in dir.
func wantNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// devicesOf counts the stored devices of a user.
func devicesOf(t *testing.T, srv *servertest.Server, username string) int {
	t.Helper()
	u := srv.User(t, username)
	if u == nil {
		t.Fatalf("no user %s", username)
	}
	devices, err := srv.Store.DevicesOf(map[string]bool{u.ID: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(devices)
}

// A sign-in needs a username and a password: a body any bigger, or a file,
// is refused before it is read, and leaves nothing on the disk.
func TestConsole_LoginBodyLimit(t *testing.T) {
	srv := setup(t, servertest.Options{})
	tmp := watchTempDir(t)
	before := devicesOf(t, srv, "leadA")
	fields := [][2]string{{"username", "leadA"}, {"password", servertest.CityPassword}}

	t.Run("FileWithLength", func(t *testing.T) {
		body, ct, n := multipartBody(fields, bigFile)
		a := postRaw(t, srv.URL, "/console/login", http.Header{"Content-Type": {ct}}, body, n)
		e := wantEnvelope(t, a, http.StatusRequestEntityTooLarge, syncproto.CodePayloadTooLarge)
		if e.Details["limit"] == nil {
			t.Errorf("the error does not say the limit: %+v", e)
		}
	})
	t.Run("FileChunked", func(t *testing.T) {
		body, ct, _ := multipartBody(fields, bigFile)
		a := postRaw(t, srv.URL, "/console/login", http.Header{"Content-Type": {ct}}, body, -1)
		e := wantEnvelope(t, a, http.StatusBadRequest, syncproto.CodeInvalidRequest)
		if e.Details["field"] != "Content-Type" {
			t.Errorf("the error does not name Content-Type: %+v", e)
		}
	})
	t.Run("LongFormChunked", func(t *testing.T) {
		form := "username=leadA&password=" + servertest.CityPassword + "&pad="
		body := io.MultiReader(strings.NewReader(form), io.LimitReader(filler('x'), bigFile))
		a := postRaw(t, srv.URL, "/console/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body, -1)
		wantEnvelope(t, a, http.StatusRequestEntityTooLarge, syncproto.CodePayloadTooLarge)
	})
	wantNoTempFiles(t, tmp)
	if after := devicesOf(t, srv, "leadA"); after != before {
		t.Fatalf("refused sign-ins stored devices: %d before, %d after", before, after)
	}
	// The ordinary form still signs in.
	if resp := newBrowser(t, srv.URL).login("leadA"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
}

// signedIn returns a browser signed in as user and a CSRF token of its
// session.
func signedIn(t *testing.T, srv *servertest.Server, user string) (*browser, string) {
	t.Helper()
	b := newBrowser(t, srv.URL)
	if resp := b.login(user); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d", user, resp.StatusCode)
	}
	_, page := b.do("GET", "/console/warnings", nil, nil)
	return b, csrfOf(t, page)
}

// cookieHeader is the session cookie of b, for requests sent by hand.
func cookieHeader(t *testing.T, b *browser, ct string) http.Header {
	t.Helper()
	u, _ := url.Parse(b.base + "/console/")
	h := http.Header{"Content-Type": {ct}}
	for _, c := range b.http.Jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	return h
}

// A signed-in form is checked for its session, its size and its CSRF
// token before a file in it is read: only the feed upload takes a file,
// only from a user allowed to import, and only after a valid token.
func TestConsole_SignedFormsRefuseFilesUnread(t *testing.T) {
	const feedLimit = 64 << 10
	srv := setup(t, servertest.Options{FeedLimit: feedLimit})
	tmp := watchTempDir(t)
	lead, leadCSRF := signedIn(t, srv, "leadA")
	center, centerCSRF := signedIn(t, srv, "center1")
	seq := srv.LastSeq(t)

	t.Run("FileToAnotherForm", func(t *testing.T) {
		body, ct, _ := multipartBody([][2]string{{"csrf", leadCSRF}}, bigFile)
		a := postRaw(t, srv.URL, "/console/warnings", cookieHeader(t, lead, ct), body, -1)
		e := wantEnvelope(t, a, http.StatusBadRequest, syncproto.CodeInvalidRequest)
		if e.Details["field"] != "Content-Type" {
			t.Errorf("the error does not name Content-Type: %+v", e)
		}
	})
	t.Run("FileToAPage", func(t *testing.T) {
		body, ct, _ := multipartBody([][2]string{{"csrf", leadCSRF}, {"q", "测试C1"}}, bigFile)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/console/warnings", body)
		req.Header = cookieHeader(t, lead, ct)
		a := sendRaw(t, srv.URL, req, -1)
		if a.status != http.StatusOK || !strings.Contains(a.body, "测试C2") {
			t.Fatalf("a page with a body: %d, or its body was taken for a filter", a.status)
		}
	})
	t.Run("FileWithoutCSRF", func(t *testing.T) {
		body, ct, _ := multipartBody(nil, bigFile)
		a := postRaw(t, srv.URL, "/console/feed", cookieHeader(t, center, ct), body, -1)
		e := wantEnvelope(t, a, http.StatusForbidden, syncproto.CodeForbidden)
		if e.Details["field"] != "csrf" {
			t.Errorf("the error does not name csrf: %+v", e)
		}
	})
	t.Run("FileWithForgedCSRF", func(t *testing.T) {
		body, ct, _ := multipartBody([][2]string{{"csrf", "forged"}}, bigFile)
		a := postRaw(t, srv.URL, "/console/feed", cookieHeader(t, center, ct), body, -1)
		wantEnvelope(t, a, http.StatusForbidden, syncproto.CodeForbidden)
	})
	t.Run("FileFromLead", func(t *testing.T) {
		body, ct, _ := multipartBody([][2]string{{"csrf", leadCSRF}}, bigFile)
		a := postRaw(t, srv.URL, "/console/feed", cookieHeader(t, lead, ct), body, -1)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "只有市反诈中心") {
			t.Fatalf("a lead uploads: %d", a.status)
		}
	})
	t.Run("FileOverTheFeedLimit", func(t *testing.T) {
		for _, tc := range []struct {
			size    int64
			chunked bool
		}{{bigFile, false}, {bigFile, true}, {feedLimit + 1, false}} {
			body, ct, n := multipartBody([][2]string{{"csrf", centerCSRF}}, tc.size)
			if tc.chunked {
				n = -1
			}
			a := postRaw(t, srv.URL, "/console/feed", cookieHeader(t, center, ct), body, n)
			if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "文件太大（上限 64 KiB）") {
				t.Fatalf("a file of %d bytes (chunked %v): %d", tc.size, tc.chunked, a.status)
			}
		}
	})
	t.Run("WithoutSession", func(t *testing.T) {
		body, ct, _ := multipartBody([][2]string{{"csrf", centerCSRF}}, bigFile)
		a := postRaw(t, srv.URL, "/console/feed", http.Header{"Content-Type": {ct}}, body, -1)
		if a.status != http.StatusSeeOther {
			t.Fatalf("no session: %d", a.status)
		}
	})
	wantNoTempFiles(t, tmp)
	if srv.LastSeq(t) != seq {
		t.Fatalf("refused forms changed the store: seq %d, then %d", seq, srv.LastSeq(t))
	}
}

// Every signed-in form has a limit that fits it; a body past it is
// refused before its CSRF token is looked at.
func TestConsole_FormBodyLimit(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, csrf := signedIn(t, srv, "leadA")
	form := "csrf=" + url.QueryEscape(csrf) + "&q="
	body := io.MultiReader(strings.NewReader(form), io.LimitReader(filler('x'), bigFile))
	a := postRaw(t, srv.URL, "/console/warnings", cookieHeader(t, lead, "application/x-www-form-urlencoded"), body, -1)
	wantEnvelope(t, a, http.StatusRequestEntityTooLarge, syncproto.CodePayloadTooLarge)
	// A form with its token and a long comment is still taken.
	resp, _ := lead.do("POST", "/console/warnings", url.Values{"csrf": {csrf}, "q": {strings.Repeat("测", 2000)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a long search: %d", resp.StatusCode)
	}
}
