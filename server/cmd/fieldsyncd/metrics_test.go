package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
)

func TestServeMetrics(t *testing.T) {
	dir := initStore(t)
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(tokenFile, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"serve", "--data", dir, "--metrics-token-file", tokenFile}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("serve with an empty token file: %v", err)
	}
	if err := os.WriteFile(tokenFile, []byte("scrape-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop := startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error", "--metrics-token-file", tokenFile)
	signInAdmin(t, remote.New(url))
	scrape := func(token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if status, body := scrape(""); status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Fatalf("scrape without the token: %d %s", status, body)
	}
	status, body := scrape("scrape-secret-1")
	if status != http.StatusOK {
		t.Fatalf("scrape: %d %s", status, body)
	}
	// serve's store reports its commits: the login wrote one.
	if !regexp.MustCompile(`(?m)^fieldsync_store_commit_requests_count [1-9]`).MatchString(body) {
		t.Fatalf("no commits counted:\n%s", body)
	}
	for _, want := range []string{`fieldsync_auth_failures_total{reason="metrics_token"} 1`, "fieldsync_store_size_bytes ",
		`fieldsync_http_requests_total{method="POST",route="/v1/auth/login",status="200"} 1`, "fieldsync_active_devices{window=\"24h\"} 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in the scrape", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
}
