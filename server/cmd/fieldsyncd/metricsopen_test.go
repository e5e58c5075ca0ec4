package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConfig_MetricsExposure: GET /metrics needs no token by
// default, so serving it on an address other machines reach must be a
// choice: a token file, or --metrics-open. Without either such an address
// stops the server at start, saying what to set; a loopback address needs
// neither. Nothing here listens: the check comes before the store is
// opened.
func TestServeConfig_MetricsExposure(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(tokenFile, []byte("scrape-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string // the error's parts; none: starts
	}{
		{"AllInterfaces", []string{"--addr", "0.0.0.0:8080"}, []string{"0.0.0.0:8080", "--metrics-token-file", "--metrics-open"}},
		{"EmptyHost", []string{"--addr", ":8080"}, []string{"--metrics-token-file", "--metrics-open"}},
		{"IPv6Wildcard", []string{"--addr", "[::]:8080"}, []string{"--metrics-open"}},
		{"LANAddress", []string{"--addr", "192.168.1.10:8080"}, []string{"--metrics-open"}},
		{"HostName", []string{"--addr", "fieldsync.example:8080"}, []string{"--metrics-open"}},
		{"OpenNotATruth", []string{"--addr", "0.0.0.0:8080", "--metrics-open", "yes"}, []string{"--metrics-open"}},
		{"TokenAndOpen", []string{"--addr", "0.0.0.0:8080", "--metrics-token-file", tokenFile, "--metrics-open", "true"}, []string{"contradict"}},
		{"WithToken", []string{"--addr", "0.0.0.0:8080", "--metrics-token-file", tokenFile}, nil},
		{"OpenOnPurpose", []string{"--addr", "0.0.0.0:8080", "--metrics-open", "true"}, nil},
		{"Loopback", []string{"--addr", "127.0.0.1:8080"}, nil},
		{"LoopbackIPv6", []string{"--addr", "[::1]:8080"}, nil},
		{"Localhost", []string{"--addr", "localhost:0"}, nil},
		{"Default", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadServeConfig(append([]string{"--data", "/srv/fieldsync"}, tc.args...), env{}.lookup)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("started")
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
		})
	}
	t.Run("FromTheEnvironment", func(t *testing.T) {
		_, err := loadServeConfig([]string{"--data", "/srv/fieldsync"}, env{"FIELDSYNC_ADDR": "0.0.0.0:8080", "FIELDSYNC_METRICS_OPEN": "true"}.lookup)
		if err != nil {
			t.Fatalf("metrics-open from the environment: %v", err)
		}
	})
}

// TestServe_RefusesOpenMetricsOnAPublicAddress runs the commands as an
// operator would: serve and demo on all interfaces without a token stop
// before they open anything (so nothing listens), naming the setting.
func TestServe_RefusesOpenMetricsOnAPublicAddress(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--data", dir, "--addr", "0.0.0.0:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--metrics-open") {
		t.Fatalf("serve on 0.0.0.0 without a metrics token: %v", err)
	}
	err = run(context.Background(), []string{"demo", "--addr", "0.0.0.0:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--metrics-open") {
		t.Fatalf("demo on 0.0.0.0: %v", err)
	}
}

// TestWarnOpenMetrics: a server that serves /metrics without a token to
// other machines says so in its log at start; one with a token or on a
// loopback address says nothing.
func TestWarnOpenMetrics(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		warned      bool
	}{
		{"0.0.0.0:443", "", true},
		{":8080", "", true},
		{"0.0.0.0:443", "scrape-secret-1", false},
		{"127.0.0.1:8080", "", false},
		{"[::1]:8080", "", false},
	} {
		var buf bytes.Buffer
		warnOpenMetrics(slog.New(slog.NewJSONHandler(&buf, nil)), tc.addr, tc.token)
		got := buf.String()
		if warned := strings.Contains(got, `"level":"WARN"`) && strings.Contains(got, "/metrics"); warned != tc.warned {
			t.Errorf("addr %s, token %q: log %q, want a warning: %v", tc.addr, tc.token, got, tc.warned)
		}
		if tc.token != "" && strings.Contains(got, tc.token) {
			t.Errorf("the log holds the token: %q", got)
		}
	}
}
