package remote_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// node is a test server that records the requests it gets and answers
// each with status (200 and an empty health answer when 0).
type node struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []string
	status int
}

func newNode(t *testing.T, status int) *node {
	n := &node{status: status}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.got = append(n.got, r.Method+" "+r.URL.Path)
		n.mu.Unlock()
		if n.status != 0 {
			w.WriteHeader(n.status)
			return
		}
		if r.Method == http.MethodHead {
			w.Header().Set(syncproto.HeaderUploadOffset, "3")
			return
		}
		w.Header().Set("Content-Type", syncproto.JSON.MediaType())
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *node) requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// refused is an address where nothing listens.
func refused(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

// TestClient_MovesToTheNextAddress: a request that cannot connect to the
// first address goes at once to the second, and the requests after it
// start there.
func TestClient_MovesToTheNextAddress(t *testing.T) {
	down, up := refused(t), newNode(t, 0)
	c := remote.New(down, up.srv.URL)
	for range 2 {
		if err := c.Health(context.Background()); err != nil {
			t.Fatalf("health: %v", err)
		}
	}
	if c.Address() != up.srv.URL {
		t.Fatalf("address in use %s, want %s", c.Address(), up.srv.URL)
	}
	if diff := cmp.Diff([]string{"GET /v1/healthz", "GET /v1/healthz"}, up.requests()); diff != "" {
		t.Fatalf("requests at the second address (-want +got):\n%s", diff)
	}
}

// TestClient_MovesOnAfterGatewayErrors: 502, 503 and 504 (a proxy whose
// node is down, a node without quorum) send the request to the next
// address; a 400 is the request's own fault and goes nowhere else.
func TestClient_MovesOnAfterGatewayErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		bad, good := newNode(t, status), newNode(t, 0)
		c := remote.New(bad.srv.URL, good.srv.URL)
		if err := c.Health(context.Background()); err != nil {
			t.Fatalf("%d at the first address: %v", status, err)
		}
		if len(bad.requests()) != 1 || len(good.requests()) != 1 {
			t.Fatalf("%d: requests %q then %q, want one at each", status, bad.requests(), good.requests())
		}
	}
	bad, good := newNode(t, http.StatusBadRequest), newNode(t, 0)
	c := remote.New(bad.srv.URL, good.srv.URL)
	if err := c.Health(context.Background()); err == nil {
		t.Fatal("a 400 was not returned")
	}
	if len(good.requests()) != 0 || c.Address() != bad.srv.URL {
		t.Fatalf("a 400 moved the client to %s (requests there: %q)", c.Address(), good.requests())
	}
}

// TestClient_EveryAddressDown: each address is tried once, and the last
// failure is returned; the next request goes round again.
func TestClient_EveryAddressDown(t *testing.T) {
	a, b := newNode(t, http.StatusServiceUnavailable), newNode(t, http.StatusServiceUnavailable)
	c := remote.New(a.srv.URL, b.srv.URL)
	err := c.Health(context.Background())
	if code := syncproto.ErrorCode(err); code != syncproto.CodeUnavailable {
		t.Fatalf("err %v (code %q), want unavailable", err, code)
	}
	if len(a.requests()) != 1 || len(b.requests()) != 1 {
		t.Fatalf("requests %q and %q, want one at each address", a.requests(), b.requests())
	}
}

// TestClient_UseAddress: a device starts at the address that answered
// last time; an address not in the list changes nothing.
func TestClient_UseAddress(t *testing.T) {
	a, b := newNode(t, 0), newNode(t, 0)
	c := remote.New(a.srv.URL, b.srv.URL+"/")
	if c.UseAddress("http://elsewhere.invalid") || c.Address() != a.srv.URL {
		t.Fatalf("an unknown address was taken: %s", c.Address())
	}
	if !c.UseAddress(b.srv.URL + "/") {
		t.Fatal("the second address was refused")
	}
	if err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(a.requests()) != 0 || len(b.requests()) != 1 {
		t.Fatalf("requests %q and %q, want the one at the second address", a.requests(), b.requests())
	}
}

// TestUpload_AskedAtTheNextAddress: an upload made at one address is asked
// for at the next under the same path (after each address's own path) once
// the first fails; a PATCH cut at the first is not sent again at the
// second, since the caller must ask the offset first.
func TestUpload_AskedAtTheNextAddress(t *testing.T) {
	first, second := newNode(t, 0), newNode(t, 0)
	// Each address with a path of its own, as behind two proxies.
	c := remote.New(first.srv.URL+"/a", second.srv.URL+"/b/")
	url := first.srv.URL + "/a/v1/uploads/d/u"
	if _, err := c.UploadOffset(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	first.srv.CloseClientConnections()
	first.srv.Listener.Close()
	if _, err := c.PatchUpload(context.Background(), url, 3, []byte("xyz")); err == nil {
		t.Fatal("a PATCH to a closed address succeeded")
	}
	if got := second.requests(); len(got) != 0 {
		t.Fatalf("the cut PATCH was sent again at the second address: %q", got)
	}
	off, err := c.UploadOffset(context.Background(), url)
	if err != nil || off != 3 {
		t.Fatalf("offset at the second address: %d, %v", off, err)
	}
	if diff := cmp.Diff([]string{"HEAD /b/v1/uploads/d/u"}, second.requests()); diff != "" {
		t.Fatalf("requests at the second address (-want +got):\n%s", diff)
	}
	// An upload under neither address's path stays refused.
	if _, err := c.UploadOffset(context.Background(), second.srv.URL+"/c/v1/uploads/d/u"); err == nil || !strings.Contains(err.Error(), "not on the server") {
		t.Fatalf("an upload outside the addresses: %v", err)
	}
}

// TestSplitAddresses reads a list as people type it, and refuses what is
// not an address.
func TestSplitAddresses(t *testing.T) {
	got, err := remote.SplitAddresses(" https://a.example/4110/, http://10.0.0.2:8080\nhttps://c.example ")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"https://a.example/4110", "http://10.0.0.2:8080", "https://c.example"}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", " , ", "a.example", "ftp://a.example", "https://a.example/?x=1"} {
		if _, err := remote.SplitAddresses(bad); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}
