package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// rawValues is every key and value of a stopped store's bucket.
func rawValues(tb testing.TB, dir, bucket string) map[string][]byte {
	values := map[string][]byte{}
	rawView(tb, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			values[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return values
}

// TestMigrate_CompactLog: the schema 12 upgrade rewrites nothing; the log
// entries and push results written after it are compact, and the older
// ones beside them still read: a resent batch gets back the results
// stored before the upgrade, and the whole log decodes.
func TestMigrate_CompactLog(t *testing.T) {
	const a1Phone = "00000000-0000-4000-8000-0000000000a1"
	ctx := context.Background()
	dir := copyV1(t)
	oldLog, oldResults := rawValues(t, dir, "log"), rawValues(t, dir, "results")
	// a1's phone sent client_seqs 1 and 2 before the upgrade.
	sent := map[uint64]syncproto.Op{}
	for _, v := range oldLog {
		if v[0] == 0xc1 {
			t.Fatal("the schema-1 fixture holds a compact log entry")
		}
		var e store.LogEntry
		if err := store.DecodeLogEntry(v, &e); err != nil {
			t.Fatal(err)
		}
		if e.DeviceID == a1Phone && e.Op != nil {
			sent[e.Op.ClientSeq] = *e.Op
		}
	}
	if len(sent) != 2 {
		t.Fatalf("a1's phone logged %d ops in the fixture, want 2", len(sent))
	}
	stored := map[uint64]syncproto.Result{}
	for cs := range sent {
		var r syncproto.Result
		if err := store.DecodeResult(oldResults[a1Phone+string(binary.BigEndian.AppendUint64(nil, cs))], cs, &r); err != nil {
			t.Fatal(err)
		}
		stored[cs] = r
	}

	srv := servertest.Start(t, servertest.Options{Dir: dir})
	a1, err := srv.LoginDevice("a1", servertest.CityPassword, a1Phone)
	if err != nil {
		t.Fatal(err)
	}
	reached := true
	op3 := syncproto.Op{ID: uuid.NewString(), ClientSeq: 3, Type: syncproto.OpRecorded, WarningID: sent[1].WarningID, At: time.Now().UTC().Truncate(time.Second),
		Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeRefused, Notes: "再次联系"}}
	first, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{op3}})
	if err != nil || len(first.Results) != 1 || first.Results[0].OpID != op3.ID {
		t.Fatalf("push after the upgrade: %+v %v", first, err)
	}
	// The whole batch again, as a phone that lost the answer sends it.
	again, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{sent[1], sent[2], op3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []syncproto.Result{stored[1], stored[2], first.Results[0]}
	for i := range want {
		want[i].Status = syncproto.StatusDuplicate
	}
	if diff := cmp.Diff(want, again.Results); diff != "" {
		t.Fatalf("a resent batch's results (-stored +answered):\n%s", diff)
	}
	head := srv.LastSeq(t)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	if got := rawSchema(t, dir); got != store.SchemaVersion {
		t.Fatalf("schema %d", got)
	}
	newLog, newResults := rawValues(t, dir, "log"), rawValues(t, dir, "results")
	for k, v := range oldLog {
		if !bytes.Equal(newLog[k], v) {
			t.Errorf("log entry %d was rewritten", binary.BigEndian.Uint64([]byte(k)))
		}
	}
	for k, v := range oldResults {
		if !bytes.Equal(newResults[k], v) {
			t.Errorf("result %x was rewritten", k)
		}
	}
	if v := newResults[a1Phone+string(binary.BigEndian.AppendUint64(nil, 3))]; len(v) == 0 || v[0] != 0xc1 {
		t.Errorf("the result written after the upgrade is %x", v)
	}
	var logged *store.LogEntry
	err = store.ReadLogFile(dir+"/"+store.DBFile, func(seq uint64, e *store.LogEntry) error {
		if _, old := oldLog[string(binary.BigEndian.AppendUint64(nil, seq))]; !old && newLog[string(binary.BigEndian.AppendUint64(nil, seq))][0] != 0xc1 {
			t.Errorf("log entry %d, written after the upgrade, is not compact", seq)
		}
		if e.Op != nil && e.Op.ID == op3.ID {
			logged = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if logged == nil || logged.Seq != head || !cmp.Equal(*logged.Op, op3) || !cmp.Equal(*logged.Result, first.Results[0]) {
		t.Fatalf("the log holds op 3 as %+v", logged)
	}
}
