package storefile_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// mustBackup opens a new store holding one photo and returns its backup
// and the photo's hash.
func mustBackup(tb testing.TB) ([]byte, string) {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	photo := bytes.Repeat([]byte("photo"), 100)
	sum := sha256.Sum256(photo)
	hash := hex.EncodeToString(sum[:])
	if _, err := st.PutBlob(context.Background(), syncproto.Actor{UserID: "u1", DeviceID: "d1"}, hash, "image/png", bytes.NewReader(photo)); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := st.Backup(context.Background(), &buf)
	if err != nil {
		tb.Fatal(err)
	}
	if info.Blobs != 1 || info.Bytes != int64(buf.Len()) {
		tb.Fatalf("backup info %+v for %d bytes", info, buf.Len())
	}
	return buf.Bytes(), hash
}

// rewrite copies a backup's entries, letting edit change each one's body
// (nil drops the entry).
func rewrite(t *testing.T, backup []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(backup))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if body = edit(h.Name, body); body == nil {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRestore_Refuses: a backup whose parts do not agree with each other,
// or that this binary cannot read, is refused with a message that says
// why, and the target is not created.
func TestRestore_Refuses(t *testing.T) {
	backup, hash := mustBackup(t)
	editJSON := func(name string, change func(m map[string]any)) []byte {
		return rewrite(t, backup, func(n string, body []byte) []byte {
			if n != name {
				return body
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			change(m)
			out, _ := json.Marshal(m)
			return out
		})
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"NewerSchema", "newer than this fieldsyncd understands", editJSON("fieldsync-backup.json", func(m map[string]any) { m["schema_version"] = store.SchemaVersion + 1 })},
		{"OtherFormat", "format 2", editJSON("fieldsync-backup.json", func(m map[string]any) { m["format"] = 2 })},
		{"DamagedPhoto", "photo " + hash + " is damaged", rewrite(t, backup, func(n string, body []byte) []byte {
			if strings.HasPrefix(n, "blobs/") {
				body = bytes.Clone(body)
				body[0] ^= 1
			}
			return body
		})},
		{"PhotoMissing", "photos", rewrite(t, backup, func(n string, body []byte) []byte {
			if strings.HasPrefix(n, "blobs/") {
				return nil
			}
			return body
		})},
		{"TrailerDisagrees", "the database is damaged", editJSON("fieldsync-backup-end.json", func(m map[string]any) { m["db_sha256"] = strings.Repeat("0", 64) })},
		{"NoTrailer", "incomplete", rewrite(t, backup, func(n string, body []byte) []byte {
			if n == "fieldsync-backup-end.json" {
				return nil
			}
			return body
		})},
		{"NotABackup", "not a fieldsync backup", rewrite(t, backup, func(n string, body []byte) []byte {
			if n == "fieldsync-backup.json" {
				return nil
			}
			return body
		})},
		{"Empty", "empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := storefile.Restore(context.Background(), bytes.NewReader(tc.data), filepath.Join(parent, "store"), storefile.RestoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v, want %q", err, tc.want)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("a refused restore left %v", left)
			}
		})
	}
}

// FuzzVerifyBackup: whatever the bytes, reading a backup never panics, and
// only a whole, consistent backup passes.
func FuzzVerifyBackup(f *testing.F) {
	backup, _ := mustBackup(f)
	f.Add(backup)
	f.Add(backup[:len(backup)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := storefile.VerifyBackup(bytes.NewReader(data))
		if err == nil && (info.Bytes > int64(len(data)) || info.Format != store.BackupFormat) {
			t.Fatalf("verified %d bytes of %d: %+v", info.Bytes, len(data), info)
		}
	})
}

// TestRestore_RefusesAServedStore: a restore with Replace over a store a
// running server holds would move the directory from under it, and every
// push it acknowledged afterwards would land in a file nobody reads again.
// It is refused and changes nothing; once the server stops, it goes ahead.
func TestRestore_RefusesAServedStore(t *testing.T) {
	backup, _ := mustBackup(t)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	inc := st.Incarnation()
	_, err = storefile.Restore(context.Background(), bytes.NewReader(backup), dir, storefile.RestoreOptions{Replace: true})
	if !errors.Is(err, storefile.ErrStoreInUse) {
		st.Close()
		t.Fatalf("restore over a served store: %v, want ErrStoreInUse", err)
	}
	if left, _ := os.ReadDir(filepath.Dir(dir)); len(left) != 1 {
		t.Errorf("a refused restore left %v beside the store", left)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := storefile.Restore(context.Background(), bytes.NewReader(backup), dir, storefile.RestoreOptions{Replace: true})
	if err != nil {
		t.Fatalf("restore over a stopped store: %v", err)
	}
	if info.MovedAside == "" {
		t.Fatal("the old store was not moved aside")
	}
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Incarnation() == inc {
		t.Fatal("the restored store kept the old store's incarnation")
	}
}

// tailHook calls at once when the stream it wraps has given all but its
// last kilobytes (a tar reader need not read the padding after its end).
type tailHook struct {
	r     io.Reader
	left  int
	at    func()
	fired bool
}

func (h *tailHook) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.left -= n
	if !h.fired && h.left <= 2048 {
		h.fired = true
		h.at()
	}
	return n, err
}

// TestRestore_ServerStartingMeanwhile: a server that starts while a restore
// ends (systemd's Restart=, an operator) waits for the restore's lock on the
// old file; when it gets it, the directory holds the restored store, and it
// must run on that, not on the old file it had opened, moved aside by then.
func TestRestore_ServerStartingMeanwhile(t *testing.T) {
	backup, _ := mustBackup(t)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	old := st.Incarnation()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		st  *store.Store
		err error
	}
	started := make(chan opened, 1)
	src := &tailHook{r: bytes.NewReader(backup), left: len(backup), at: func() {
		go func() {
			// It waits as long as the restore takes, however slow the
			// machine: the test is what it opens, not how soon.
			s, err := store.Open(dir, store.Options{LockWait: time.Until(testwait.Deadline(t))})
			started <- opened{s, err}
		}()
	}}
	info, err := storefile.Restore(context.Background(), src, dir, storefile.RestoreOptions{Replace: true})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !src.fired {
		t.Fatal("the restore did not read its stream to the end")
	}
	got := <-started
	if got.err != nil {
		t.Fatalf("open during the restore: %v", got.err)
	}
	defer got.st.Close()
	inc := got.st.Incarnation()
	if inc == old || hex.EncodeToString(inc[:]) != info.Incarnation {
		t.Fatalf("the server started during the restore runs on incarnation %x; the restored store's is %s, the old one's %x", inc, info.Incarnation, old)
	}
}
