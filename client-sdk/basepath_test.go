package clientsdk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// requestLog is a transport that keeps the method and path of every request.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.lines = append(l.lines, r.Method+" "+r.URL.Path)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestSDK_ServerURLWithPath: a city served under /4110, as behind a
// province's proxy. A cadre's phone given the address with its path signs
// in, syncs, records an attempt with a photo and uploads it (tus: the
// server's Location carries the path); every request it makes stays under
// the path, and the server holds the attempt and the photo.
func TestSDK_ServerURLWithPath(t *testing.T) {
	const base = "/4110"
	ct := newCityWith(t, nil, servertest.Options{BasePath: base})
	if !strings.HasSuffix(ct.srv.URL, base) {
		t.Fatalf("server URL %s does not end in %s", ct.srv.URL, base)
	}
	id := ct.importWarnings(t, row("BP1", servertest.UnitVillA1))["BP1"]
	log := &requestLog{}
	opts := ct.phoneOptions(testKey(t), log)
	opts.ServerURL = ct.srv.URL + "/" // a trailing slash as people type it
	c := openPhone(t, t.TempDir(), opts)
	signIn(t, c, "a1")
	mustSync(t, c)

	photo := writePhoto(t, 3000, 1)
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	a := visit(syncproto.OutcomeDissuaded)
	a.Photos = []string{photo}
	if _, err := c.RecordAttempt(id, a); err != nil {
		t.Fatal(err)
	}
	mustSync(t, c)

	if w := ct.serverWarning(t, id); len(w.Attempts) != 1 {
		t.Fatalf("the server holds %d attempts, want the one recorded", len(w.Attempts))
	}
	if m := ct.srv.Photo(t, hex.EncodeToString(sum[:])); m == nil || m.Size != int64(len(data)) {
		t.Fatalf("the server holds photo %+v, want its %d bytes", m, len(data))
	}
	var created, patched bool
	for _, l := range log.all() {
		method, path, _ := strings.Cut(l, " ")
		if !strings.HasPrefix(path, base+"/v1/") {
			t.Errorf("request %s left the server's path %s", l, base)
		}
		created = created || method == http.MethodPost && path == base+syncproto.UploadsPath
		patched = patched || method == http.MethodPatch && strings.HasPrefix(path, base+syncproto.UploadsPath)
	}
	if !created || !patched {
		t.Fatalf("the photo did not go by a resumable upload under %s: %q", base, log.all())
	}
}
