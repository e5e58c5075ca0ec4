package httpapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// startServer serves a new store on 127.0.0.1:0 with the given listener
// settings until the test ends.
func startServer(t *testing.T, lc httpapi.ListenConfig) (*httpapi.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(context.Background(), st, app.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.New(a, httpapi.Config{Logger: logger, Listen: lc})
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv, st
}

func trusting(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}}
}

func TestServer_TLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, first := servertest.WriteCertificate(t, dir, "first", 1)
	srv, _ := startServer(t, httpapi.ListenConfig{CertFile: certFile, KeyFile: keyFile})
	url := srv.URL()
	if url[:8] != "https://" {
		t.Fatalf("URL %s: want https", url)
	}

	t.Run("HTTP2", func(t *testing.T) {
		resp, err := trusting(first).Get(url + "/v1/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("status %d over %s: want 200 over HTTP/2", resp.StatusCode, resp.Proto)
		}
		if got := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 1 {
			t.Fatalf("served serial %d, want 1", got)
		}
	})

	t.Run("HTTP1", func(t *testing.T) {
		c := trusting(first)
		c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
		c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		resp, err := c.Get(url + "/v1/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
			t.Fatalf("status %d over %s: want 200 over HTTP/1.1", resp.StatusCode, resp.Proto)
		}
	})

	t.Run("UntrustedClientRefused", func(t *testing.T) {
		_, _, other := servertest.WriteCertificate(t, t.TempDir(), "other", 9)
		if _, err := trusting(other).Get(url + "/v1/healthz"); err == nil {
			t.Fatal("a client that does not trust the certificate connected")
		}
	})

	t.Run("Reload", func(t *testing.T) {
		_, _, second := servertest.WriteCertificate(t, dir, "second", 2)
		if err := srv.ReloadCertificate(); err != nil {
			t.Fatal(err)
		}
		resp, err := trusting(second).Get(url + "/v1/healthz")
		if err != nil {
			t.Fatalf("a client trusting only the new certificate: %v", err)
		}
		resp.Body.Close()
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "second" {
			t.Fatalf("served %q after reload, want second", got)
		}

		// A broken file keeps the certificate in use.
		if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := srv.ReloadCertificate(); err == nil {
			t.Fatal("reloading a broken certificate succeeded")
		}
		resp, err = trusting(second).Get(url + "/v1/healthz")
		if err != nil {
			t.Fatalf("after a failed reload: %v", err)
		}
		resp.Body.Close()
		if got := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 2 {
			t.Fatalf("served serial %d after a failed reload, want 2", got)
		}
	})
}

func TestServer_OpenRefusesBadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := servertest.WriteCertificate(t, dir, "x", 1)
	_, otherKey, _ := servertest.WriteCertificate(t, t.TempDir(), "y", 2)
	st, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := app.New(context.Background(), st, app.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for name, lc := range map[string]httpapi.ListenConfig{
		"KeyOfAnotherCertificate": {CertFile: certFile, KeyFile: otherKey},
		"MissingFile":             {CertFile: certFile + ".missing", KeyFile: otherKey},
		"NoKey":                   {CertFile: certFile},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httpapi.New(a, httpapi.Config{Listen: lc})
			if err := srv.Open("127.0.0.1:0"); err == nil {
				_ = srv.Close(context.Background())
				t.Fatal("Open succeeded")
			}
		})
	}
}

// healthOn sends GET /v1/healthz on an open connection and reads the
// answer, waiting until deadline.
func healthOn(conn net.Conn, r *bufio.Reader, deadline time.Time) (*http.Response, error) {
	if _, err := io.WriteString(conn, "GET /v1/healthz HTTP/1.1\r\nHost: fieldsync\r\n\r\n"); err != nil {
		return nil, err
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

func TestServer_MaxConns(t *testing.T) {
	const max = 2
	srv, _ := startServer(t, httpapi.ListenConfig{MaxConns: max})
	addr := srv.Addr().String()
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}
	// Fill the cap with kept-alive connections, each answered once.
	var held []net.Conn
	for range max {
		conn, r := dial()
		resp, err := healthOn(conn, r, time.Now().Add(20*time.Second))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection within the cap: %v", err)
		}
		held = append(held, conn)
	}
	// The next connection is not served while they stay open. (Waiting a
	// moment shows nothing comes; a slow machine cannot make this fail.)
	extra, r := dial()
	_, err := healthOn(extra, r, time.Now().Add(300*time.Millisecond))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a connection beyond the cap got %v, want no answer", err)
	}
	// Once one closes, the waiting connection is served. Its request is
	// already sent; read its answer.
	held[0].Close()
	if err := extra.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the waiting connection after one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting connection got %d", resp.StatusCode)
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func TestServer_Readyz(t *testing.T) {
	t.Run("ReadyThenDraining", func(t *testing.T) {
		srv, _ := startServer(t, httpapi.ListenConfig{})
		var h syncproto.Health
		if code := getJSON(t, srv.URL()+"/v1/readyz", &h); code != http.StatusOK || h.Status != "ready" {
			t.Fatalf("readyz: %d %+v, want 200 ready", code, h)
		}
		srv.Drain()
		var env syncproto.ErrorEnvelope
		if code := getJSON(t, srv.URL()+"/v1/readyz", &env); code != http.StatusServiceUnavailable || env.Error == nil || env.Error.Code != syncproto.CodeUnavailable {
			t.Fatalf("readyz while draining: %d %+v, want 503 unavailable", code, env.Error)
		}
		// Liveness is another question: the process still serves.
		if code := getJSON(t, srv.URL()+"/v1/healthz", &h); code != http.StatusOK || h.Status != "ok" {
			t.Fatalf("healthz while draining: %d %+v", code, h)
		}
	})
	t.Run("StoreClosed", func(t *testing.T) {
		srv, st := startServer(t, httpapi.ListenConfig{})
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		var env syncproto.ErrorEnvelope
		if code := getJSON(t, srv.URL()+"/v1/readyz", &env); code != http.StatusServiceUnavailable || env.Error == nil || env.Error.Code != syncproto.CodeUnavailable {
			t.Fatalf("readyz with the store closed: %d %+v, want 503 unavailable", code, env.Error)
		}
	})
}
