package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// startRun runs the command in the background and returns the URL it
// prints and a function that stops it and returns its error.
func startRun(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	return startRunLogged(t, io.Discard, args...)
}

// startRunLogged is startRun with the command's stderr (its log) in stderr.
func startRunLogged(t *testing.T, stderr io.Writer, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, stderr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	url := ""
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			url = u
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if url == "" {
		cancel()
		t.Fatalf("no listening line: %v", <-done)
	}
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Until(testwait.Deadline(t))):
			t.Fatal("the server did not stop")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return url, stop
}

// signInAdmin signs the admin that initStore made in through c, from a new
// device, and returns the answer and the device id.
func signInAdmin(t *testing.T, c *remote.Client) (*syncproto.TokenResponse, string) {
	t.Helper()
	device := uuid.NewString()
	login, err := c.Login(context.Background(), syncproto.LoginRequest{Username: "admin", Password: adminPassword, DeviceID: device})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return login, device
}

func TestInitServe(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("init-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"init", "--data", dir, "--root-unit", "4110", "许昌市", "--admin-password-file", pw}, &out, io.Discard); err != nil {
		t.Fatalf("init: %v", err)
	}
	if !strings.Contains(out.String(), "4110 许昌市") || strings.Contains(out.String(), "init-password-1") {
		t.Fatalf("init printed %q", out.String())
	}
	if err := run(context.Background(), []string{"init", "--data", dir}, io.Discard, io.Discard); err == nil {
		t.Fatal("a second init without a password file succeeded")
	}
	if err := run(context.Background(), []string{"serve"}, io.Discard, io.Discard); err == nil {
		t.Fatal("serve without --data succeeded")
	}
	if err := run(context.Background(), []string{"serve", "--data", dir, "--deadline-high", "soon"}, io.Discard, io.Discard); err == nil {
		t.Fatal("serve with a bad deadline succeeded")
	}
	url, stop := startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error", "--deadline-high", "30m")
	c := remote.New(url)
	dev := uuid.NewString()
	if _, err := c.Login(context.Background(), syncproto.LoginRequest{Username: "admin", Password: "init-password-1", DeviceID: dev}); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	warned := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rows := []syncproto.FeedWarning{
		{ExternalID: "H1", Name: "甲", Phone: "13800000000", Unit: "4110", FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: warned},
		{ExternalID: "M1", Name: "乙", Phone: "13800000001", Unit: "4110", FraudType: "刷单返利", Risk: syncproto.RiskMedium, WarnedAt: warned},
	}
	if resp, err := c.ImportFeed(context.Background(), rows); err != nil || len(resp.Created) != 2 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	page, err := c.Pull(context.Background(), syncproto.PullRequest{DeviceID: dev})
	if err != nil {
		t.Fatal(err)
	}
	deadlines := map[string]time.Duration{}
	for _, ch := range page.Changes {
		if w, ok := ch.Data.(*syncproto.Warning); ok {
			deadlines[w.ExternalID] = w.Deadline.Sub(w.WarnedAt)
		}
	}
	if deadlines["H1"] != 30*time.Minute || deadlines["M1"] != 12*time.Hour {
		t.Fatalf("deadlines %v: want 30m from --deadline-high, and the 12h default for medium", deadlines)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"check", "--data", dir}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "2 warnings, 0 problems") || !strings.Contains(out.String(), fmt.Sprintf("schema version %d (", store.SchemaVersion)) {
		t.Fatalf("check: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"check", "--data", t.TempDir()}, io.Discard, io.Discard); err == nil {
		t.Fatal("check of an empty directory succeeded")
	}
	// A log with a hole is reported.
	db, err := bolt.Open(filepath.Join(dir, "fieldsync.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("log")).Delete(binary.BigEndian.AppendUint64(nil, 2))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out.Reset()
	if err := run(context.Background(), []string{"check", "--data", dir}, &out, io.Discard); err == nil || !strings.Contains(out.String(), "seq 3 where 2 was expected") {
		t.Fatalf("check of a log with a hole: %v %q", err, out.String())
	}
}

func TestDemo(t *testing.T) {
	url, stop := startRun(t, "demo", "--addr", "127.0.0.1:0", "--days", "3", "--warnings", "40")
	ctx := context.Background()
	tree := demo.City(1)
	count := func(username, password string) (units, warnings int) {
		c := remote.New(url)
		dev := uuid.NewString()
		if _, err := c.Login(ctx, syncproto.LoginRequest{Username: username, Password: password, DeviceID: dev}); err != nil {
			t.Fatalf("demo login %s: %v", username, err)
		}
		page, err := c.Pull(ctx, syncproto.PullRequest{DeviceID: dev, Limit: syncproto.MaxPullLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range page.Changes {
			switch ch.Entity {
			case syncproto.EntityUnit:
				units++
			case syncproto.EntityWarning:
				warnings++
			}
		}
		return units, warnings
	}
	// Two whole days of about 40 warnings and today's so far: the history
	// itself is tested in server/demo.
	if units, warnings := count(demo.CenterUsername, demo.CenterPassword); units != len(tree.Units) || warnings < 40 {
		t.Fatalf("the demo center pulled %d units and %d warnings, want %d and two days' worth", units, warnings, len(tree.Units))
	}
	if units, _ := count(demo.LeadUsername(tree.Townships()[0]), demo.TownshipPassword); units != 1+len(tree.Children(tree.Townships()[0])) {
		t.Fatalf("the demo lead pulled %d units", units)
	}
	// A browser opening the address the banner prints lands on the
	// console.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET /: %d to %q, want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	var banner strings.Builder
	printLogins(&banner, url, tree, "admin-pw", "")
	if i, j := strings.Index(banner.String(), url+"/console/"), strings.Index(banner.String(), "admin-pw"); i < 0 || i > j {
		t.Fatalf("the banner does not name the console first:\n%s", banner.String())
	}
	// With --data the store outlives the demo, and the banner says so.
	var kept strings.Builder
	printLogins(&kept, url, tree, "admin-pw", "/srv/demo")
	if !strings.Contains(banner.String(), "deleted on exit") || strings.Contains(kept.String(), "deleted on exit") || !strings.Contains(kept.String(), "kept in /srv/demo") {
		t.Fatalf("the banners do not say where the store is:\n%s\n%s", banner.String(), kept.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("demo stopped with %v", err)
	}
}
