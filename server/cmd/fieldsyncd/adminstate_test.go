package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// adminServer is a served store with the init admin and the small test
// city, whose village cadre a1 is no admin.
type adminServer struct {
	t       *testing.T
	dir     string // store
	url     string
	stop    func() error
	pw      string // file with the admin's password
	admin   *remote.Client
	scratch string
}

func startAdminServer(t *testing.T) *adminServer {
	t.Helper()
	ctx := context.Background()
	s := &adminServer{t: t, dir: t.TempDir(), scratch: t.TempDir()}
	s.pw = s.writeFile("pw", adminPassword+"\n")
	if err := run(ctx, []string{"init", "--data", s.dir, "--admin-password-file", s.pw}, io.Discard, io.Discard); err != nil {
		t.Fatalf("init: %v", err)
	}
	s.url, s.stop = startRun(t, "serve", "--data", s.dir, "--addr", "127.0.0.1:0", "--log-level", "error")
	s.admin = remote.New(s.url)
	signInAdmin(t, s.admin)
	servertest.Load(t, s.admin, servertest.City())
	return s
}

func (s *adminServer) writeFile(name, content string) string {
	s.t.Helper()
	p := filepath.Join(s.scratch, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// backup runs `fieldsyncd backup` as admin with extra flags; it returns
// what the run wrote to stderr.
func (s *adminServer) backup(extra ...string) (string, error) {
	args := append([]string{"backup", "--url", s.url, "--user", "admin", "--out", filepath.Join(s.scratch, "backup.tar")}, extra...)
	var stderr strings.Builder
	err := run(context.Background(), args, io.Discard, &stderr)
	return stderr.String(), err
}

// rotate runs `fieldsyncd keys rotate --url` as admin with extra flags.
func (s *adminServer) rotate(extra ...string) error {
	args := append([]string{"keys", "rotate", "--url", s.url, "--user", "admin"}, extra...)
	return run(context.Background(), args, io.Discard, io.Discard)
}

// lockAdmin fails five sign-ins of admin, which locks the username: the
// right password is refused too.
func (s *adminServer) lockAdmin() {
	s.t.Helper()
	ctx := context.Background()
	for range 5 {
		_, err := remote.New(s.url).Login(ctx, syncproto.LoginRequest{Username: "admin", Password: "a-wrong-guess", DeviceID: uuid.NewString()})
		if code(err) != syncproto.CodeUnauthorized {
			s.t.Fatalf("wrong password: %v", err)
		}
	}
	_, err := remote.New(s.url).Login(ctx, syncproto.LoginRequest{Username: "admin", Password: adminPassword, DeviceID: uuid.NewString()})
	if code(err) != syncproto.CodeRateLimited {
		s.t.Fatalf("sign-in after 5 failures: %v, want rate_limited", err)
	}
}

// toolDevices lists the admin's devices of a tool, from the stopped store.
func (s *adminServer) toolDevices(platform string) []string {
	s.t.Helper()
	st, err := store.Open(s.dir, store.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer st.Close()
	admin, err := st.UserByUsername("admin")
	if err != nil || admin == nil {
		s.t.Fatalf("admin %v: %v", admin, err)
	}
	devices, err := st.DevicesOf(map[string]bool{admin.ID: true})
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for _, d := range devices {
		if d.Platform == platform {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

func code(err error) string {
	var perr *syncproto.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	return ""
}

func readState(t *testing.T, path string) adminState {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st adminState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file: %v", err)
	}
	return st
}

func writeState(t *testing.T, path string, st adminState) {
	t.Helper()
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}
}

// TestAdminToolDeviceNotClaimable: a device id belongs to whoever signs in
// with it first. The tools used to sign in from an id anyone could
// compute, so any account holder could take it and the backup got 403
// from then on. Neither the id derived from the password nor the random
// one of a state file can be taken that way.
func TestAdminToolDeviceNotClaimable(t *testing.T) {
	ctx := context.Background()
	s := startAdminServer(t)
	defer s.stop()
	for _, platform := range []string{"fieldsyncd-backup", "fieldsyncd-keys"} {
		old := uuid.NewSHA1(uuid.NameSpaceURL, []byte("fieldsyncd:"+platform+":admin")).String()
		if _, err := remote.New(s.url).Login(ctx, syncproto.LoginRequest{Username: "a1", Password: servertest.CityPassword, DeviceID: old}); err != nil {
			t.Fatalf("cadre signs in with the old id of %s: %v", platform, err)
		}
	}
	if _, err := s.backup("--password-file", s.pw); err != nil {
		t.Errorf("backup after a cadre took the old id: %v", err)
	}
	if err := s.rotate("--password-file", s.pw); err != nil {
		t.Errorf("keys rotate after a cadre took the old id: %v", err)
	}
	if _, err := s.backup("--password-file", s.pw, "--state-file", filepath.Join(s.scratch, "state.json")); err != nil {
		t.Errorf("backup with a state file after a cadre took the old id: %v", err)
	}
}

// TestAdminStateFile: with --state-file the first run signs in with the
// password and keeps the session; later runs refresh it and need no
// password, so a username locked by someone else's wrong guesses stops
// neither a backup nor a key rotation.
func TestAdminStateFile(t *testing.T) {
	s := startAdminServer(t)
	state := filepath.Join(s.scratch, "backup-state", "state.json")
	keysState := filepath.Join(s.scratch, "backup-state", "keys.json")
	if err := os.Mkdir(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}

	// First run: the password is required.
	if _, err := s.backup("--state-file", state); err == nil || !strings.Contains(err.Error(), "--password-file is required for the first run") {
		t.Fatalf("first run without --password-file: %v", err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused first run left a state file: %v", err)
	}
	if out, err := s.backup("--state-file", state, "--password-file", s.pw); err != nil {
		t.Fatalf("first run: %v %s", err, out)
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(state)
	if strings.Contains(string(raw), adminPassword) {
		t.Error("the state file holds the password")
	}
	first := readState(t, state)
	if id, err := uuid.Parse(first.DeviceID); err != nil || id.Version() != 4 || first.RefreshToken == "" || first.Tool != "fieldsyncd-backup" || first.User != "admin" || first.URL != s.url {
		t.Fatalf("state after the first run: device %s (%v), tool %q, user %q, url %q, token set %v",
			first.DeviceID, err, first.Tool, first.User, first.URL, first.RefreshToken != "")
	}
	if err := s.rotate("--state-file", keysState, "--password-file", s.pw); err != nil {
		t.Fatalf("first keys rotate: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Dir(state)); len(left) != 4 {
		t.Errorf("the state directory holds %v, want the two state files, their locks and no temporary file", left)
	}

	// The password file now holds a wrong password, and the username is
	// locked: runs with a state file carry on without either.
	s.writeFile("pw", "not-the-password\n")
	s.lockAdmin()
	var stderr string
	if stderr, err = s.backup("--state-file", state, "--password-file", s.pw); err != nil {
		t.Fatalf("second run, wrong password, locked username: %v", err)
	}
	second := readState(t, state)
	if second.DeviceID != first.DeviceID || second.RefreshToken == first.RefreshToken || second.RefreshToken == "" {
		t.Errorf("second run: device %s (was %s), token rotated %v", second.DeviceID, first.DeviceID, second.RefreshToken != first.RefreshToken)
	}
	if _, err := s.backup("--state-file", state); err != nil {
		t.Fatalf("third run without --password-file: %v", err)
	}
	third := readState(t, state)
	if err := s.rotate("--state-file", keysState); err != nil {
		t.Fatalf("keys rotate with its state file, locked username: %v", err)
	}
	for _, secret := range []string{first.RefreshToken, second.RefreshToken, third.RefreshToken, adminPassword} {
		if strings.Contains(stderr, secret) {
			t.Errorf("a run printed a secret: %q", stderr)
		}
	}
	// Each file serves one tool.
	if err := s.rotate("--state-file", state); err == nil || !strings.Contains(err.Error(), "state file of its own") {
		t.Errorf("keys rotate with the backup's state file: %v", err)
	}
	if _, err := s.backup("--state-file", keysState); err == nil || !strings.Contains(err.Error(), "state file of its own") {
		t.Errorf("backup with the keys tool's state file: %v", err)
	}
	if err := run(context.Background(), []string{"backup", "--url", s.url, "--user", "a1", "--state-file", state, "--out", filepath.Join(s.scratch, "x.tar")}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "holds the session of user admin") {
		t.Errorf("backup as another user with admin's state file: %v", err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// No run logged out: the kept session is the only device of the tool.
	if ids := s.toolDevices("fieldsyncd-backup"); len(ids) != 1 || ids[0] != first.DeviceID {
		t.Errorf("devices of the backup tool %v, want only %s", ids, first.DeviceID)
	}
}

// TestAdminStateEnded: a saved session that ended (spent elsewhere, its
// chain ended, a token the server does not know) falls back to the
// password on the same device; without a password file the run says
// what to do. A revoked device is not replaced behind the admin's back.
func TestAdminStateEnded(t *testing.T) {
	ctx := context.Background()
	s := startAdminServer(t)
	defer s.stop()
	state := filepath.Join(s.scratch, "state.json")
	if _, err := s.backup("--state-file", state, "--password-file", s.pw); err != nil {
		t.Fatalf("first run: %v", err)
	}
	device := readState(t, state).DeviceID

	cases := []struct {
		name, why string
		end       func()
	}{
		{"spent elsewhere", "already used", func() {
			// A copy of the file refreshed, and refreshed again with
			// the new token: the file's token is spent and so is its
			// successor, so it is no retry of a lost answer.
			st := readState(t, state)
			c := remote.New(s.url)
			resp, err := c.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: st.RefreshToken, DeviceID: st.DeviceID})
			if err != nil {
				t.Fatalf("refresh the saved token: %v", err)
			}
			if _, err := c.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: resp.RefreshToken, DeviceID: st.DeviceID}); err != nil {
				t.Fatalf("refresh its successor: %v", err)
			}
		}},
		{"chain ended", "expired or was revoked", func() {
			// A copy of the file refreshed and logged out: the file's
			// token is of the ended chain.
			st := readState(t, state)
			c := remote.New(s.url)
			resp, err := c.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: st.RefreshToken, DeviceID: st.DeviceID})
			if err != nil {
				t.Fatal(err)
			}
			st.RefreshToken = resp.RefreshToken
			writeState(t, state, st)
			if err := c.Logout(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"unknown token", "not valid", func() {
			st := readState(t, state)
			st.RefreshToken = "not-a-token-the-server-issued"
			writeState(t, state, st)
		}},
	}
	for _, tc := range cases {
		tc.end()
		before := readState(t, state).RefreshToken
		_, err := s.backup("--state-file", state)
		if err == nil || !strings.Contains(err.Error(), "has ended") || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "sign in again with --password-file") {
			t.Errorf("%s, no password file: %v", tc.name, err)
		}
		stderr, err := s.backup("--state-file", state, "--password-file", s.pw)
		if err != nil {
			t.Fatalf("%s, with the password: %v", tc.name, err)
		}
		if !strings.Contains(stderr, "has ended") || !strings.Contains(stderr, "signing in with --password-file") {
			t.Errorf("%s: the run said %q", tc.name, stderr)
		}
		after := readState(t, state)
		if after.DeviceID != device || after.RefreshToken == "" || after.RefreshToken == before {
			t.Errorf("%s: device %s (was %s), new token %v", tc.name, after.DeviceID, device, after.RefreshToken != before)
		}
		if _, err := s.backup("--state-file", state); err != nil {
			t.Errorf("%s: the run after the password sign-in: %v", tc.name, err)
		}
	}

	// Another URL for the same server: the token is not sent there; the
	// password starts a session.
	other := strings.Replace(s.url, "127.0.0.1", "localhost", 1)
	var stderr strings.Builder
	if err := run(ctx, []string{"backup", "--url", other, "--user", "admin", "--state-file", state, "--password-file", s.pw, "--out", filepath.Join(s.scratch, "b.tar")}, io.Discard, &stderr); err != nil {
		t.Fatalf("backup at another URL: %v", err)
	}
	if !strings.Contains(stderr.String(), "is with "+s.url+", not "+other) {
		t.Errorf("backup at another URL said %q", stderr.String())
	}
	if st := readState(t, state); st.URL != other || st.DeviceID != device {
		t.Errorf("state after the move: url %s device %s", st.URL, st.DeviceID)
	}

	// The admin revokes the tool's device: the run fails and says how to
	// start over.
	if _, err := s.admin.RevokeDevice(ctx, device, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.backup("--state-file", state, "--password-file", s.pw); err == nil || !strings.Contains(err.Error(), "delete "+state) {
		t.Fatalf("run with a revoked device: %v", err)
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if _, err := s.backup("--state-file", state, "--password-file", s.pw); err != nil {
		t.Fatalf("run after deleting the state file: %v", err)
	}
	if st := readState(t, state); st.DeviceID == device {
		t.Error("a new state file reused the revoked device")
	}

	// A damaged file is refused, and what it holds is not quoted.
	if err := os.WriteFile(state, []byte(`{"device_id": "secret-token-like`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.backup("--state-file", state, "--password-file", s.pw); err == nil || !strings.Contains(err.Error(), "damaged") || strings.Contains(err.Error(), "secret") {
		t.Errorf("run with a damaged state file: %v", err)
	}
}

// TestToolWithoutStateFile: without a state file each run signs in as a
// new device with a random id (nothing anyone could claim first or guess a
// password from) and signs out at the end. A device signed out that sent
// nothing is forgotten at its user's next sign-in from a new device, so
// runs without a state file leave one device behind, not one each.
func TestToolWithoutStateFile(t *testing.T) {
	s := startAdminServer(t)
	for range 2 {
		if _, err := s.backup("--password-file", s.pw); err != nil {
			t.Fatalf("backup: %v", err)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	ids := s.toolDevices("fieldsyncd-backup")
	if len(ids) != 1 {
		t.Fatalf("devices of the backup tool %v, want the last run's only", ids)
	}
	for _, id := range ids {
		if u, err := uuid.Parse(id); err != nil || u.Version() != 4 || !syncproto.ValidUUID(id) {
			t.Errorf("device id %s: %v, want a random lowercase UUID", id, err)
		}
	}
}

// TestAdminStateConcurrentRuns: two runs sharing a state file at once (an
// overlapping cron job) take turns with the saved session instead of both
// spending its token, which would end it: both succeed without the
// password, and so does the next run.
func TestAdminStateConcurrentRuns(t *testing.T) {
	s := startAdminServer(t)
	state := filepath.Join(s.scratch, "state.json")
	if _, err := s.backup("--state-file", state, "--password-file", s.pw); err != nil {
		t.Fatalf("first run: %v", err)
	}
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := s.backup("--state-file", state, "--out", filepath.Join(s.scratch, fmt.Sprintf("concurrent-%d.tar", i)))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent run: %v", err)
		}
	}
	if _, err := s.backup("--state-file", state); err != nil {
		t.Fatalf("the run after them, without the password: %v", err)
	}
}
