package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestServe_TLS(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"init", "--data", dir, "--admin-password-file", writeFile(t, "tls-password-1\n")}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	certFile, keyFile, first := servertest.WriteCertificate(t, certDir, "first", 1)
	// The key comes from the environment, the certificate from the config
	// file: settings of every source reach the listener.
	t.Setenv("FIELDSYNC_TLS_KEY", keyFile)
	conf := writeFile(t, "tls-cert = "+certFile+"\nlog-level = info\n")
	logs := &servertest.Logs{}
	url, stop := startRunLogged(t, logs, "serve", "--config", conf, "--data", dir, "--addr", "127.0.0.1:0")
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s, want https", url)
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		// Each request on a new connection, so each sees the certificate
		// served now.
		DisableKeepAlives: true,
	}}
	served := func() (*http.Response, *x509.Certificate) {
		t.Helper()
		resp, err := client.Get(url + "/v1/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h syncproto.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Status != "ready" {
			t.Fatalf("readyz: %d %+v %v", resp.StatusCode, h, err)
		}
		return resp, resp.TLS.PeerCertificates[0]
	}

	resp, cert := served()
	if resp.ProtoMajor != 2 || cert.SerialNumber.Int64() != 1 {
		t.Fatalf("served certificate %d over %s, want serial 1 over HTTP/2", cert.SerialNumber, resp.Proto)
	}

	// SIGHUP swaps to a renewed certificate.
	_, _, second := servertest.WriteCertificate(t, certDir, "second", 2)
	pool.AddCert(second)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the renewed certificate", func() bool {
		_, cert := served()
		return cert.SerialNumber.Int64() == 2
	})
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Fatalf("no reload line in the log:\n%s", logs)
	}

	// A broken file keeps the certificate in use, and the log says so
	// without the key.
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the failed reload in the log", func() bool {
		return strings.Contains(logs.String(), "TLS certificate reload failed")
	})
	if _, cert := served(); cert.SerialNumber.Int64() != 2 {
		t.Fatalf("served serial %d after a failed reload, want 2", cert.SerialNumber)
	}
	keyBody := strings.Split(string(keyPEM), "\n")[1]
	if strings.Contains(logs.String(), keyBody) || strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatalf("the log holds key material:\n%s", logs)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
}
