package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/testfs"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestCompact: warnings assigned back and forth fill the scope indexes with
// dead entries; `fieldsyncd compact` drops them, rewrites a smaller file
// that passes the check, keeps the old one, and the store serves as before.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, stop := openServer(t, dir)
	ids := srv.LoadCity(t)
	var rows []syncproto.FeedWarning
	for i := range 200 {
		rows = append(rows, syncproto.FeedWarning{ExternalID: fmt.Sprintf("K%03d", i), Name: "测试", Phone: "13800001234",
			Unit: servertest.UnitVillA2, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: time.Now().Add(-time.Hour)})
	}
	created := srv.Import(t, "center1", rows...)
	center := srv.Login(t, "center1", servertest.CityPassword)
	var ops []syncproto.Op
	for round := range 12 {
		cadre := ids[[]string{"a2x", "a2y"}[round%2]]
		for _, id := range created {
			ops = append(ops, syncproto.Op{ID: uuid.NewString(), ClientSeq: center.NextSeq(), Type: syncproto.OpAssigned,
				WarningID: id, At: time.Now().UTC(), Body: syncproto.OpBody{Assignee: cadre}})
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), syncproto.MaxPushOps)
		if _, err := center.Push(ctx, syncproto.PushRequest{DeviceID: center.ID, Ops: ops[:n]}); err != nil {
			t.Fatal(err)
		}
		ops = ops[n:]
	}
	lead := srv.Login(t, "leadA", servertest.CityPassword)
	before, err := lead.Pull(ctx, syncproto.PullRequest{DeviceID: lead.ID, Limit: syncproto.MaxPullLimit})
	if err != nil || before.More {
		t.Fatalf("lead's pull: %v", err)
	}

	// Refused while the server holds the store.
	path := filepath.Join(dir, store.DBFile)
	if err := run(ctx, []string{"compact", "--data", dir}, io.Discard, io.Discard); err == nil {
		t.Fatal("compact of a store in use succeeded")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"compact", "--data", dir, "--tombstone-horizon", "1h"}, io.Discard, io.Discard); err == nil {
		t.Fatal("a horizon under a day was accepted")
	}
	oldBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	if err := run(ctx, []string{"compact", "--data", dir}, &out, io.Discard); err != nil {
		t.Fatalf("compact: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	m := regexp.MustCompile(`file: (\d+) bytes before, (\d+) after`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("compact printed %q", out.String())
	}
	sizeBefore, _ := strconv.Atoi(m[1])
	sizeAfter, _ := strconv.Atoi(m[2])
	// bbolt grows a file of this size to the next power of two, so the
	// file may keep its size: the pages it holds up to must go down.
	if fi, err := os.Stat(path); err != nil || int(fi.Size()) != sizeAfter || sizeAfter > sizeBefore || sizeBefore != len(oldBytes) {
		t.Fatalf("sizes %d -> %d (file of %d bytes before; %v)", sizeBefore, sizeAfter, len(oldBytes), err)
	}
	if used, old := usedBytes(t, path), usedBytes(t, path+".bak"); used >= old {
		t.Fatalf("the rewritten file holds pages up to %d bytes, the old one up to %d", used, old)
	}
	if !strings.Contains(out.String(), "superseded entries") || strings.Contains(out.String(), " 0 superseded") {
		t.Fatalf("the index compaction removed nothing: %q", out.String())
	}
	// The old file is kept as it was before the rewrite (after the index
	// compaction, which a running server does too).
	if fi, err := os.Stat(path + ".bak"); err != nil || int(fi.Size()) != sizeBefore {
		t.Fatalf("the old file was not kept: %v", err)
	}
	if rep, err := storefile.CheckFile(path + ".bak"); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check of the old file: %+v %v", rep, err)
	}
	if _, err := os.Stat(path + ".compact"); err == nil {
		t.Fatal("the temporary file is left behind")
	}
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 || rep.Warnings != 200 {
		t.Fatalf("check after compact: %+v %v", rep, err)
	}

	// The compacted store serves the same state: the lead's old cursor
	// carries on with nothing new, and a fresh pull sees every warning.
	srv, stop = openServer(t, dir)
	lead, err = srv.LoginDevice("leadA", servertest.CityPassword, lead.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := lead.Pull(ctx, syncproto.PullRequest{DeviceID: lead.ID, Cursor: before.Cursor})
	if err != nil || page.Reset || len(page.Changes) != 0 {
		t.Fatalf("the lead's old cursor after compact: %+v %v", page, err)
	}
	fresh := srv.Login(t, "leadA", servertest.CityPassword)
	page, err = fresh.Pull(ctx, syncproto.PullRequest{DeviceID: fresh.ID, Limit: syncproto.MaxPullLimit})
	if err != nil || len(page.Changes) != len(before.Changes) {
		t.Fatalf("a fresh pull after compact: %d changes, before %d (%v)", len(page.Changes), len(before.Changes), err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Again, dropping the old file this time.
	out.Reset()
	if err := run(ctx, []string{"compact", "--data", dir, "--remove-old"}, &out, io.Discard); err != nil {
		t.Fatalf("compact --remove-old: %v", err)
	}
	if _, err := os.Stat(path + ".bak"); err != nil {
		t.Fatalf("the first backup should still be there: %v", err)
	}
	if rep, err := storefile.Check(dir); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check after the second compact: %+v %v", rep, err)
	}
}

// openServer serves the store in dir; the returned close stops it once,
// whether the test calls it (the store must be stopped for compact) or the
// test ends first.
func openServer(t *testing.T, dir string) (*servertest.Server, func() error) {
	t.Helper()
	srv, err := servertest.Open(servertest.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var closeErr error
	stop := func() error {
		once.Do(func() { closeErr = srv.Close() })
		return closeErr
	}
	t.Cleanup(func() { stop() })
	return srv, stop
}

// TestUpgradeFromTheCommandLine: the schema-1 fixture is upgraded by the
// first command that opens it (here compact, which says so), and serve
// refuses a store of a newer schema with a message naming both versions.
func TestUpgradeFromTheCommandLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testfs.CopyTree(t, filepath.Join("..", "..", "store", "testdata", "v1"), dir)
	var out strings.Builder
	if err := run(ctx, []string{"compact", "--data", dir, "--remove-old"}, &out, io.Discard); err != nil {
		t.Fatalf("compact of the schema-1 fixture: %v", err)
	}
	for v := uint64(1); v < store.SchemaVersion; v++ {
		if !strings.Contains(out.String(), fmt.Sprintf("upgraded the store from schema %d to %d", v, v+1)) {
			t.Fatalf("compact printed %q", out.String())
		}
	}

	db, err := bolt.Open(filepath.Join(dir, store.DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), fmt.Sprintf("the %d this fieldsyncd", store.SchemaVersion)) {
		t.Fatalf("serve of a schema-99 store: %v", err)
	}
}

// usedBytes is how far into the bbolt file at path its pages reach (the
// file itself may be larger: bbolt grows it ahead).
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
