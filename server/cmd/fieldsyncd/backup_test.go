package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestBackupRestore: `fieldsyncd backup` downloads a running server's
// backup into a file and `fieldsyncd restore` makes a store of it that
// `fieldsyncd check` passes; restore refuses a directory that holds a
// store unless told to replace it (and then keeps the old one), and
// refuses a file cut short, leaving the target as it was.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dataDir := initStore(t)
	pw := writeFile(t, adminPassword+"\n")
	// Over HTTPS with a certificate of our own, as --ca-cert is for.
	certFile, keyFile, cert := servertest.WriteCertificate(t, t.TempDir(), "backup", 1)
	url, stop := startRun(t, "serve", "--data", dataDir, "--addr", "127.0.0.1:0", "--log-level", "error", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("serving %s, want https", url)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := remote.New(url)
	c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
	signInAdmin(t, c)
	servertest.Load(t, c, servertest.City())
	warned := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if _, err := c.ImportFeed(ctx, []syncproto.FeedWarning{
		{ExternalID: "K1", Name: "甲", Phone: "13800000000", Unit: "4110", FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: warned},
		{ExternalID: "K2", Name: "乙", Phone: "13800000001", Unit: "4110", FraudType: "刷单返利", Risk: syncproto.RiskLow, WarnedAt: warned},
	}); err != nil {
		t.Fatal(err)
	}
	photo := append([]byte("\xff\xd8\xff"), bytes.Repeat([]byte("照片"), 200)...)
	sum := sha256.Sum256(photo)
	photoHash := hex.EncodeToString(sum[:])
	if _, err := c.PutBlob(ctx, photoHash, "image/jpeg", photo); err != nil {
		t.Fatal(err)
	}

	backups := filepath.Join(base, "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(backups, "fieldsync.tar")
	backup := func(user, password, out string) (string, error) {
		pf := filepath.Join(base, user+".pw")
		if err := os.WriteFile(pf, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout strings.Builder
		err := run(ctx, []string{"backup", "--url", url, "--user", user, "--password-file", pf, "--out", out, "--ca-cert", certFile}, &stdout, io.Discard)
		return stdout.String(), err
	}
	if err := run(ctx, []string{"backup", "--url", url, "--user", "admin", "--password-file", pw}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("backup without --out: %v", err)
	}
	if err := run(ctx, []string{"backup", "--url", url, "--user", "admin", "--password-file", pw, "--out", file}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("backup from a server whose certificate is not trusted: %v", err)
	}
	if _, err := backup("center1", servertest.CityPassword, file); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("backup by a user who is not an admin: %v, want 403", err)
	}
	if _, err := backup("admin", "wrong-password-1", file); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("backup with a wrong password: %v, want 401", err)
	}
	if left, _ := os.ReadDir(backups); len(left) != 0 {
		t.Fatalf("refused backups left %v", left)
	}
	out, err := backup("admin", adminPassword, file)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Log(out)
	if !strings.Contains(out, "backup written to "+file) || !strings.Contains(out, "2 warnings, 1 photos") || !strings.Contains(out, "last seq ") {
		t.Errorf("backup printed %q", out)
	}
	if _, err := backup("admin", adminPassword, filepath.Join(backups, "second.tar")); err != nil {
		t.Fatalf("second backup: %v", err)
	}
	if left, _ := os.ReadDir(backups); len(left) != 2 {
		t.Errorf("the backup directory holds %v, want the two files and no .tmp", left)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Without a state file each run signed in as a new device (adminstate_test.go
	// covers the state file's one device).
	st, err := store.Open(dataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := st.UserByUsername("admin")
	if err != nil || admin == nil {
		st.Close()
		t.Fatalf("admin %v: %v", admin, err)
	}
	devices, err := st.DevicesOf(map[string]bool{admin.ID: true})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	tools := 0
	for _, d := range devices {
		if d.Platform == "fieldsyncd-backup" {
			tools++
		}
	}
	// Each run without a state file signs in from a new device and out at
	// the end; the next run's sign-in forgets the one before, which sent
	// nothing.
	if tools != 1 {
		t.Errorf("%d devices of the backup tool, want the last of its 2 runs without a state file", tools)
	}

	// Restore into a new directory.
	restored := filepath.Join(base, "restored")
	var stdout strings.Builder
	if err := run(ctx, []string{"restore", "--from", file, "--data", restored}, &stdout, io.Discard); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for _, want := range []string{"restored " + file + " into " + restored, "2 warnings", "1 photos", "0 problems", "new incarnation", "every device resets at its next sync"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("restore printed %q, want %q in it", stdout.String(), want)
		}
	}
	t.Log(stdout.String())
	stdout.Reset()
	if err := run(ctx, []string{"check", "--data", restored}, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "2 warnings, 0 problems") {
		t.Fatalf("check of the restored store: %v %q", err, stdout.String())
	}
	if got, err := os.ReadFile(filepath.Join(restored, "blobs", photoHash[:2], photoHash)); err != nil || !bytes.Equal(got, photo) {
		t.Errorf("the photo was not restored: %v", err)
	}

	// A directory holding a store: refused, then replaced with the old one
	// kept beside it.
	before, err := os.ReadFile(filepath.Join(dataDir, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"restore", "--from", file, "--data", dataDir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "holds a store") {
		t.Fatalf("restore over a store without --replace: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dataDir, store.DBFile)); !bytes.Equal(now, before) {
		t.Fatal("a refused restore changed the store")
	}
	stdout.Reset()
	if err := run(ctx, []string{"restore", "--from", file, "--data", dataDir, "--replace"}, &stdout, io.Discard); err != nil {
		t.Fatalf("restore --replace: %v", err)
	}
	aside, _ := filepath.Glob(dataDir + ".before-restore-*")
	if len(aside) != 1 || !strings.Contains(stdout.String(), "is kept in "+aside[0]) {
		t.Fatalf("moved aside: %v; restore printed %q", aside, stdout.String())
	}
	if kept, _ := os.ReadFile(filepath.Join(aside[0], store.DBFile)); !bytes.Equal(kept, before) {
		t.Error("the replaced store was not kept as it was")
	}
	if rep, err := storefile.Check(dataDir); err != nil || len(rep.Problems) > 0 || rep.Warnings != 2 {
		t.Errorf("the replacing store: %+v %v", rep, err)
	}

	// A file cut short: refused, nothing left behind.
	full, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(base, "cut.tar")
	if err := os.WriteFile(cut, full[:len(full)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "fresh")
	err = run(ctx, []string{"restore", "--from", cut, "--data", fresh}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the backup is incomplete") {
		t.Fatalf("restore of a file cut short: %v", err)
	}
	if matches, _ := filepath.Glob(fresh + "*"); len(matches) != 0 {
		t.Errorf("a refused restore left %v", matches)
	}
	if err := run(ctx, []string{"restore", "--from", file}, io.Discard, io.Discard); err == nil {
		t.Error("restore without --data succeeded")
	}
}
