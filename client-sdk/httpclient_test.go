package clientsdk_test

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
)

// The SDK's HTTP client resumes TLS sessions: a reconnect after the link
// dropped skips the full handshake, a round trip and the certificate chain
// on a 2G link.
func TestNewHTTPClient_ResumesTLSSessions(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	hc := clientsdk.NewHTTPClient(0)
	tr := hc.Transport.(*http.Transport)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig.RootCAs = pool
	get := func() *http.Response {
		t.Helper()
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	if first := get(); first.TLS == nil || first.TLS.DidResume {
		t.Fatalf("first connection: %+v", first.TLS)
	}
	// The link dropped: the next request needs a new connection.
	tr.CloseIdleConnections()
	if again := get(); !again.TLS.DidResume {
		t.Fatal("the reconnect made a full TLS handshake: no session was resumed")
	}
}
