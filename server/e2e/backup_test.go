package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// getBackup asks the server for a backup with token and returns the
// response as it came.
func getBackup(t *testing.T, url, token string) rawResp {
	t.Helper()
	return send(t, url, rawReq{Method: http.MethodGet, Path: "/v1/admin/backup", Token: token, Header: map[string]string{"Accept-Encoding": "gzip"}})
}

// TestBackup_Permissions: the backup holds the whole city, so only an
// administrator of the root unit gets it; the others get the protocol's
// 403 (or 401) before a byte of it. The stream is a tar, not gzipped, with
// a file name, and its taking is logged without personal data.
func TestBackup_Permissions(t *testing.T) {
	logs := &servertest.Logs{}
	srv := servertest.Start(t, servertest.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	srv.LoadCity(t)
	admin := srv.Admin(t)
	if _, err := admin.UpsertUsers(context.Background(), []syncproto.UserInput{
		{Username: "countyadmin", Name: "县管理员", Unit: unitCounty, Admin: new(true), Password: testPassword},
	}); err != nil {
		t.Fatal(err)
	}
	srv.Import(t, "center1", servertest.FeedRow("BK1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))

	for _, tc := range []struct {
		who, token string
		status     int
		code       string
	}{
		{"no token", "", http.StatusUnauthorized, syncproto.CodeUnauthorized},
		{"the center's user, not an admin", srv.Login(t, "center1", testPassword).Token(), http.StatusForbidden, syncproto.CodeForbidden},
		{"an admin of a county", srv.Login(t, "countyadmin", testPassword).Token(), http.StatusForbidden, syncproto.CodeForbidden},
		{"a village cadre", srv.Login(t, "a1", testPassword).Token(), http.StatusForbidden, syncproto.CodeForbidden},
	} {
		resp := getBackup(t, srv.URL, tc.token)
		var env syncproto.ErrorEnvelope
		resp.decode(t, &env)
		if resp.Status != tc.status || env.Error == nil || env.Error.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.who, resp.Status, env.Error, tc.status, tc.code)
		}
	}

	resp := getBackup(t, srv.URL, admin.Token())
	if resp.Status != http.StatusOK {
		t.Fatalf("root admin: %d %s", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-tar" {
		t.Errorf("Content-Type %q", ct)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding %q: the backup must not be gzipped", ce)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="fieldsync-`) || !strings.HasSuffix(cd, `.tar"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	info, err := storefile.VerifyBackup(bytes.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if info.Warnings != 1 || info.LastSeq != srv.LastSeq(t) || info.Bytes != int64(len(resp.Body)) {
		t.Errorf("backup info %+v, want 1 warning up to seq %d in %d bytes", info, srv.LastSeq(t), len(resp.Body))
	}
	// The database's temporary copy is gone.
	if entries, err := os.ReadDir(srv.Dir); err != nil || len(entries) != 3 {
		t.Errorf("the store directory holds %v after a backup (%v), want fieldsync.db, blobs and uploads", entries, err)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"backup taken"`) || !strings.Contains(out, admin.Login.User.ID) {
		t.Errorf("the backup is not logged with who took it:\n%s", out)
	}
	for _, personal := range []string{"测试BK1", "13800001234", "某村某组"} {
		if strings.Contains(out, personal) {
			t.Errorf("the log holds personal data %q", personal)
		}
	}
}

// pushBatch is one push of a device: all its ops land in one transaction
// or none does.
type pushBatch struct {
	device string
	ops    []syncproto.Op
}

// TestBackup_DuringPushes: devices push concurrently through the real
// server while a backup is taken. Restored, the backup passes the
// consistency check and holds every op acknowledged before the backup was
// asked for, each once; no batch is half in it, and each device's ops in it
// run from client_seq 1 with no gap.
func TestBackup_DuringPushes(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	admin := srv.Admin(t)
	var rows []syncproto.FeedWarning
	for i := range 6 {
		rows = append(rows, servertest.FeedRow("DP-A"+string(rune('0'+i)), unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
		rows = append(rows, servertest.FeedRow("DP-B"+string(rune('0'+i)), unitVillB1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	}
	ids := srv.Import(t, "center1", rows...)
	byUnit := map[string][]string{}
	for _, r := range rows {
		byUnit[r.Unit] = append(byUnit[r.Unit], ids[r.ExternalID])
	}

	// A photo, so the backup carries one.
	a1 := srv.Login(t, "a1", testPassword)
	photo, photoHash := servertest.PNG(strings.Repeat("备份照片", 64))
	if _, err := a1.PutBlob(ctx, photoHash, "image/png", photo); err != nil {
		t.Fatal(err)
	}

	type device struct {
		d        *servertest.Device
		warnings []string
	}
	var devices []device
	for range 3 {
		devices = append(devices,
			device{srv.Login(t, "a1", testPassword), byUnit[unitVillA1]},
			device{srv.Login(t, "b1", testPassword), byUnit[unitVillB1]})
	}

	var (
		mu       sync.Mutex
		acked    []pushBatch // in the order answered
		all      []pushBatch
		ackedOps int
	)
	enough := make(chan struct{}) // closed once enough ops were acknowledged
	backedUp := make(chan struct{})
	var enoughOnce sync.Once
	var wg sync.WaitGroup
	for i, dev := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			afterBackup := 0
			for n := 0; n < 400 && afterBackup < 6; n++ {
				select {
				case <-backedUp:
					afterBackup++
				default:
				}
				var ops []syncproto.Op
				for range 1 + rng.IntN(8) {
					w := dev.warnings[rng.IntN(len(dev.warnings))]
					ops = append(ops, op(dev.d, syncproto.OpRecorded, w, 0, recordBody(syncproto.OutcomeUnreachable, false)))
				}
				b := pushBatch{device: dev.d.ID, ops: ops}
				mu.Lock()
				all = append(all, b)
				mu.Unlock()
				resp, err := dev.d.Push(ctx, syncproto.PushRequest{DeviceID: dev.d.ID, Ops: ops})
				if err != nil || len(resp.Results) != len(ops) {
					t.Errorf("push: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, b)
				ackedOps += len(ops)
				if ackedOps >= 300 {
					enoughOnce.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-t.Context().Done():
	}
	mu.Lock()
	before := append([]pushBatch(nil), acked...)
	mu.Unlock()
	resp := getBackup(t, srv.URL, admin.Token())
	close(backedUp)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("backup: %d %s", resp.Status, resp.Body)
	}
	t.Logf("%d batches acknowledged before the backup, %d in all", len(before), len(all))

	dir := filepath.Join(t.TempDir(), "restored")
	info, err := storefile.Restore(ctx, bytes.NewReader(resp.Body), dir, storefile.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if len(info.Check.Problems) > 0 || info.Check.LogEntries != info.Backup.LastSeq {
		t.Fatalf("restored store: %+v, backup up to seq %d", info.Check, info.Backup.LastSeq)
	}
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of the restored store: %+v %v", rep, err)
	}
	inc := srv.Store.Incarnation()
	if info.Incarnation == hex.EncodeToString(inc[:]) || info.Backup.Incarnation != hex.EncodeToString(inc[:]) {
		t.Errorf("incarnation: backup %s, restored %s, running %x: the restored store needs a new one", info.Backup.Incarnation, info.Incarnation, inc)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "blobs", photoHash[:2], photoHash)); err != nil || !bytes.Equal(got, photo) {
		t.Errorf("the photo was not restored: %v", err)
	}

	logged := opsInLog(t, dir)
	for id, n := range logged {
		if n > 1 {
			t.Errorf("op %s is in the restored log %d times", id, n)
		}
	}
	for _, b := range before {
		for _, o := range b.ops {
			if logged[o.ID] != 1 {
				t.Errorf("op %s (device %s, client_seq %d) was acknowledged before the backup began but is not in it", o.ID, b.device, o.ClientSeq)
			}
		}
	}
	// The same from the warnings' states: each attempt acknowledged before
	// the backup is on its warning once.
	restoredStore, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string]int{}
	for _, id := range ids {
		w, err := restoredStore.Warning(id)
		if err != nil || w == nil {
			t.Fatalf("warning %s in the restored store: %v", id, err)
		}
		for _, a := range w.Attempts {
			attempts[a.ID]++
		}
	}
	restoredStore.Close()
	for _, b := range before {
		for _, o := range b.ops {
			if attempts[o.Body.AttemptID] != 1 {
				t.Errorf("attempt %s, acknowledged before the backup, is on its warning %d times", o.Body.AttemptID, attempts[o.Body.AttemptID])
			}
		}
	}
	for id, n := range attempts {
		if n > 1 {
			t.Errorf("attempt %s is on its warning %d times", id, n)
		}
	}

	lastSeq := map[string]uint64{}
	for _, b := range all {
		in := 0
		for _, o := range b.ops {
			in += logged[o.ID]
		}
		switch in {
		case len(b.ops):
			lastSeq[b.device] = max(lastSeq[b.device], b.ops[len(b.ops)-1].ClientSeq)
		case 0:
		default:
			t.Errorf("a batch of device %s is half in the backup: %d of %d ops", b.device, in, len(b.ops))
		}
	}
	// Each device's ops in the backup are exactly client_seq 1..last.
	for _, b := range all {
		for _, o := range b.ops {
			if want := o.ClientSeq <= lastSeq[b.device]; want != (logged[o.ID] == 1) {
				t.Errorf("device %s: op client_seq %d in the backup: %v, but the backup holds up to %d", b.device, o.ClientSeq, !want, lastSeq[b.device])
			}
		}
	}
}

// opsInLog counts each op id in the log of the stopped store in dir.
func opsInLog(t *testing.T, dir string) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := store.ReadLogFile(filepath.Join(dir, store.DBFile), func(_ uint64, e *store.LogEntry) error {
		if e.Op != nil {
			n[e.Op.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return n
}

// TestBackup_CutShort: a backup cut anywhere, even exactly between two of
// its entries, is refused by restore as incomplete, and the target
// directory is left as it was.
func TestBackup_CutShort(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	resp := getBackup(t, srv.URL, srv.Admin(t).Token())
	if resp.Status != http.StatusOK {
		t.Fatalf("backup: %d", resp.Status)
	}
	full := resp.Body
	// The trailer is the last entry: a 512-byte header and a padded JSON
	// block, then 1024 bytes of end-of-archive.
	cuts := []int{0, 100, 512, len(full) / 2, len(full) - 2048, len(full) - 1024 - 300}
	for _, cut := range cuts {
		parent := t.TempDir()
		dir := filepath.Join(parent, "store")
		if _, err := storefile.VerifyBackup(bytes.NewReader(full[:cut])); err == nil {
			t.Errorf("cut at %d of %d: verify passed", cut, len(full))
		}
		_, err := storefile.Restore(context.Background(), bytes.NewReader(full[:cut]), dir, storefile.RestoreOptions{})
		if err == nil {
			t.Errorf("cut at %d of %d: restored", cut, len(full))
			continue
		}
		if cut > 512 && !strings.Contains(err.Error(), "incomplete") {
			t.Errorf("cut at %d: %v, want a clear word that the backup is incomplete", cut, err)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Errorf("cut at %d: the restore left %v behind", cut, left)
		}
	}
	// A stream with bytes changed in the database is refused too.
	bad := bytes.Clone(full)
	bad[1024+4096+10] ^= 0xff
	if _, err := storefile.VerifyBackup(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged database: %v", err)
	}
}

// TestBackup_FailureMidStream: a failure after the first byte (a photo
// damaged on disk) cuts the connection: the client's read fails and what it
// got is no valid backup. The server logs why.
func TestBackup_FailureMidStream(t *testing.T) {
	logs := &servertest.Logs{}
	srv := servertest.Start(t, servertest.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	admin := srv.Admin(t)
	photo, hash := servertest.PNG(strings.Repeat("损坏", 300))
	if _, err := admin.PutBlob(context.Background(), hash, "image/png", photo); err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(photo)
	damaged[len(damaged)-1] ^= 0xff
	if err := os.WriteFile(filepath.Join(srv.Dir, "blobs", hash[:2], hash), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/admin/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin.Token())
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: the failure comes after the first byte", resp.StatusCode)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the body of a failed backup read to its end (%d bytes)", len(got))
	}
	if _, err := storefile.VerifyBackup(bytes.NewReader(got)); err == nil {
		t.Fatal("what a failed backup sent verifies as whole")
	}
	if out := logs.String(); !strings.Contains(out, "backup failed mid-stream") || !strings.Contains(out, "damaged") {
		t.Errorf("the failure is not logged:\n%s", out)
	}
}

// TestBackup_OutlastsServerTimeouts: a backup that takes longer to download
// than the server's read and write timeouts (a slow client, a big store)
// still arrives whole: the handler moves the connection's deadlines on as
// the stream advances.
func TestBackup_OutlastsServerTimeouts(t *testing.T) {
	ctx := context.Background()
	const timeout = time.Second
	srv := servertest.Start(t, servertest.Options{Listen: httpapi.ListenConfig{ReadTimeout: timeout, WriteTimeout: timeout}})
	// Photos enough that the stream outgrows the sockets' buffers, so the
	// server is still writing when its timeouts run out.
	rng := rand.NewChaCha8([32]byte{1, 2})
	for range 3 {
		photo := make([]byte, 6<<20)
		_, _ = rng.Read(photo) // never fails
		sum := sha256.Sum256(photo)
		if _, err := srv.Store.PutBlob(ctx, syncproto.Actor{UserID: "system"}, hex.EncodeToString(sum[:]), "image/jpeg", bytes.NewReader(photo)); err != nil {
			t.Fatal(err)
		}
	}
	// The admin signs in through the service, outside the short timeouts:
	// only the backup itself is the test, and a password check has no
	// place under a timeout it could outlast on a busy machine.
	login, _ := signInAdmin(t, srv)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/admin/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+login.AccessToken)
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A slow reader: pauses between its 36 or more reads add up to three
	// times the server's timeouts, however fast the machine.
	var got bytes.Buffer
	buf := make([]byte, 512<<10)
	var readErr error
	for readErr == nil {
		var n int
		n, readErr = io.ReadFull(resp.Body, buf)
		got.Write(buf[:n])
		time.Sleep(3 * timeout / 36)
	}
	if !errors.Is(readErr, io.ErrUnexpectedEOF) && !errors.Is(readErr, io.EOF) {
		t.Fatalf("the download failed after %d bytes: %v", got.Len(), readErr)
	}
	info, err := storefile.VerifyBackup(&got)
	if err != nil {
		t.Fatalf("the slow download is not a whole backup: %v", err)
	}
	if info.Blobs != 3 {
		t.Errorf("%d photos in the backup, want 3", info.Blobs)
	}
}
