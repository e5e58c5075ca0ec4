package remote_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestUploadBlob_RefusesOtherServer: an upload URL on another server is
// refused before any request, so the access token goes nowhere else.
func TestUploadBlob_RefusesOtherServer(t *testing.T) {
	c := remote.New("http://127.0.0.1:9")
	c.SetToken("secret")
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("a request went to %s", r.URL.Host)
		return nil, io.EOF
	})}
	err := c.UploadBlob(context.Background(), "https://elsewhere.invalid/v1/uploads/d/u", strings.Repeat("a", 64), "image/png", []byte("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "not on the server") {
		t.Fatalf("upload to another server: %v", err)
	}
}

// TestUploadBlob_RefusesOtherPath: behind a province's proxy each city is
// a path on one host; an upload URL under another city's path is another
// server, and the token is not sent there.
func TestUploadBlob_RefusesOtherPath(t *testing.T) {
	c := remote.New("https://province.example/4110/")
	c.SetToken("secret")
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("a request went to %s", r.URL)
		return nil, io.EOF
	})}
	for _, u := range []string{"/4111/v1/uploads/d/u", "/v1/uploads/d/u", "/41100/v1/uploads/d/u", "https://province.example/4111/v1/uploads/d/u"} {
		err := c.UploadBlob(context.Background(), u, strings.Repeat("a", 64), "image/png", []byte("x"), nil)
		if err == nil || !strings.Contains(err.Error(), "not on the server") {
			t.Errorf("upload to %s: %v", u, err)
		}
	}
}

// tusServer records the tus requests it gets and answers each with the
// next of its scripted answers.
type tusServer struct {
	mu      sync.Mutex
	got     []string
	answers []func(w http.ResponseWriter, r *http.Request)
}

func (s *tusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	s.got = append(s.got, r.Method+" "+r.URL.Path+" offset="+r.Header.Get("Upload-Offset")+" tus="+r.Header.Get("Tus-Resumable")+" auth="+r.Header.Get("Authorization")+" body="+string(body))
	if len(s.answers) == 0 {
		w.WriteHeader(http.StatusTeapot)
		return
	}
	next := s.answers[0]
	s.answers = s.answers[1:]
	next(w, r)
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

// TestUploadBlob_ResumesFromOffset: with a known upload the client HEADs
// and PATCHes only the bytes the server lacks.
func TestUploadBlob_ResumesFromOffset(t *testing.T) {
	s := &tusServer{answers: []func(http.ResponseWriter, *http.Request){
		status(http.StatusOK, "Upload-Offset", "3"),
		status(http.StatusNoContent, "Upload-Offset", "6"),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := remote.New(srv.URL)
	c.SetToken("tok")
	err := c.UploadBlob(context.Background(), srv.URL+"/v1/uploads/d/u", strings.Repeat("a", 64), "image/png", []byte("abcdef"), func(string) {
		t.Error("a known upload was created again")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"HEAD /v1/uploads/d/u offset= tus=1.0.0 auth=Bearer tok body=",
		"PATCH /v1/uploads/d/u offset=3 tus=1.0.0 auth=Bearer tok body=def",
	}
	if strings.Join(s.got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(s.got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUploadBlob_StartsOverWhenGone: an upload the server no longer knows
// (404 or 410) is replaced by a new one, whose URL the caller hears.
func TestUploadBlob_StartsOverWhenGone(t *testing.T) {
	for _, gone := range []int{http.StatusNotFound, http.StatusGone} {
		s := &tusServer{answers: []func(http.ResponseWriter, *http.Request){
			status(gone),
			status(http.StatusCreated, "Location", syncproto.UploadsPath+"d/new"),
			status(http.StatusNoContent, "Upload-Offset", "6"),
		}}
		srv := httptest.NewServer(s)
		c := remote.New(srv.URL)
		var created []string
		err := c.UploadBlob(context.Background(), srv.URL+"/v1/uploads/d/old", strings.Repeat("a", 64), "image/png", []byte("abcdef"), func(u string) {
			created = append(created, u)
		})
		srv.Close()
		if err != nil {
			t.Fatalf("%d: %v", gone, err)
		}
		if len(created) != 1 || created[0] != srv.URL+"/v1/uploads/d/new" {
			t.Fatalf("%d: created %v", gone, created)
		}
		if len(s.got) != 3 || !strings.HasPrefix(s.got[1], "POST /v1/uploads/ ") || !strings.HasPrefix(s.got[2], "PATCH /v1/uploads/d/new offset=0 ") {
			t.Fatalf("%d: requests %q", gone, s.got)
		}
	}
}
