package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// tokenKID reads the kid of an access token's header.
func tokenKID(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

func TestKeysRotateOffline(t *testing.T) {
	ctx := context.Background()
	dir := initStore(t)
	url, stop := startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error")
	login, dev := signInAdmin(t, remote.New(url))
	oldKID := tokenKID(t, login.AccessToken)

	// A running server holds the store: the offline command says so.
	var errOut strings.Builder
	if err := run(ctx, []string{"keys", "rotate", "--data", dir}, io.Discard, &errOut); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("keys rotate on a served store: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	var out strings.Builder
	if err := run(ctx, []string{"keys", "rotate", "--data", dir}, &out, io.Discard); err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	newKID, _, _ := strings.Cut(strings.TrimPrefix(out.String(), "new signing key "), " ")
	if newKID == "" || newKID == oldKID || !strings.Contains(out.String(), "verifying: "+oldKID+" "+newKID+"\n") {
		t.Fatalf("keys rotate printed %q (old kid %s)", out.String(), oldKID)
	}
	out.Reset()
	if err := run(ctx, []string{"keys", "list", "--data", dir}, &out, io.Discard); err != nil {
		t.Fatalf("keys list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], oldKID) || !strings.HasSuffix(lines[1], "no") ||
		!strings.HasPrefix(lines[2], newKID) || !strings.HasSuffix(lines[2], "yes") || strings.Contains(lines[1], " - ") {
		t.Fatalf("keys list printed:\n%s", out.String())
	}

	// Served again: the token signed before the rotation still works, and
	// new tokens carry the new kid.
	url, stop = startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error")
	c := remote.New(url)
	c.SetToken(login.AccessToken)
	if _, err := c.Pull(ctx, syncproto.PullRequest{DeviceID: dev}); err != nil {
		t.Fatalf("pull with a token of the old key: %v", err)
	}
	fresh, _ := signInAdmin(t, remote.New(url))
	if kid := tokenKID(t, fresh.AccessToken); kid != newKID {
		t.Fatalf("new token kid %s, want %s", kid, newKID)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	for _, args := range [][]string{{"keys"}, {"keys", "spin"}, {"keys", "rotate"}, {"keys", "list", "--data", t.TempDir()}} {
		if err := run(ctx, args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

// TestKeysRotateRemote rotates a running server's key over HTTP: the new
// kid signs at once, a token of the old kid keeps working without a
// restart, and only a root admin may rotate.
func TestKeysRotateRemote(t *testing.T) {
	ctx := context.Background()
	dir := initStore(t)
	url, stop := startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error")
	defer stop()
	c := remote.New(url)
	login, dev := signInAdmin(t, c)
	oldKID := tokenKID(t, login.AccessToken)

	var out strings.Builder
	if err := run(ctx, []string{"keys", "rotate", "--url", url, "--user", "admin", "--password-file", writeFile(t, adminPassword+"\n")}, &out, io.Discard); err != nil {
		t.Fatalf("keys rotate --url: %v", err)
	}
	newKID, _, _ := strings.Cut(strings.TrimPrefix(out.String(), "new signing key "), " ")
	if newKID == "" || newKID == oldKID || !strings.Contains(out.String(), "verifying: "+oldKID+" "+newKID+"\n") {
		t.Fatalf("keys rotate --url printed %q (old kid %s)", out.String(), oldKID)
	}
	if _, err := c.Pull(ctx, syncproto.PullRequest{DeviceID: dev}); err != nil {
		t.Fatalf("pull with a token of the old key after rotation: %v", err)
	}
	fresh, _ := signInAdmin(t, remote.New(url))
	if kid := tokenKID(t, fresh.AccessToken); kid != newKID {
		t.Fatalf("token after rotation carries kid %s, want %s", kid, newKID)
	}

	// Both --url and --data is a mistake; a wrong password signs nobody in.
	if err := run(ctx, []string{"keys", "rotate", "--url", url, "--data", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("keys rotate with --url and --data: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"keys", "rotate", "--url", url, "--user", "admin", "--password-file", bad}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "sign in") {
		t.Fatalf("keys rotate with a wrong password: %v", err)
	}
}
