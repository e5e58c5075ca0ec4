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
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMigrate_CompactAttempts: the upgrades of a schema-1 store split its
// attempts into records of the older form, and schema 13 rewrites none of
// them; an attempt recorded after it is compact, and a warning reads its
// older attempts and the new one together.
func TestMigrate_CompactAttempts(t *testing.T) {
	ctx := context.Background()
	dir := copyV1(t)
	// The warning a1's phone recorded on before the upgrade.
	id := recordedByA1(t, dir)

	srv := servertest.Start(t, servertest.Options{Dir: dir})
	before, err := srv.Store.Warning(id)
	if err != nil || before == nil || len(before.Attempts) == 0 {
		t.Fatalf("warning %s after the upgrade: %+v %v", id, before, err)
	}
	oldRecords := map[string][]byte{}
	err = srv.Store.RawDB().View(func(tx *bolt.Tx) error {
		return rawSubRecords(tx, 'a', func(id, rest, v []byte) error {
			if v[0] == 0xc1 {
				t.Errorf("the upgrade wrote attempt %x of warning %s compact", rest, id)
			}
			oldRecords[string(id)+string([]byte{rawSep, 'a'})+string(rest)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil || len(oldRecords) == 0 {
		t.Fatalf("%d attempt records after the upgrade: %v", len(oldRecords), err)
	}
	a1, err := srv.LoginDevice("a1", servertest.CityPassword, a1Phone)
	if err != nil {
		t.Fatal(err)
	}
	reached := true
	op := syncproto.Op{ID: uuid.NewString(), ClientSeq: 3, Type: syncproto.OpRecorded, WarningID: id, At: time.Now().UTC().Truncate(time.Second),
		Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodVisit, Reached: &reached, Outcome: syncproto.OutcomeRefused,
			Notes: "再次上门", Location: &syncproto.Location{Lat: 34.02, Lng: 113.85, Accuracy: 10}}}
	resp, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{op}})
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("push after the upgrade: %+v %v", resp, err)
	}
	after, err := srv.Store.Warning(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	n := len(before.Attempts)
	if len(after.Attempts) != n+1 || !cmp.Equal(after.Attempts[:n], before.Attempts) {
		t.Fatalf("the older attempts read back as %+v, were %+v", after.Attempts, before.Attempts)
	}
	if got := after.Attempts[n]; got.ID != op.Body.AttemptID || got.Notes != op.Body.Notes || !cmp.Equal(got.Location, op.Body.Location) {
		t.Fatalf("the new attempt reads back as %+v", got)
	}
	records := rawValues(t, dir, "warnings")
	for k, v := range oldRecords {
		if !bytes.Equal(records[k], v) {
			t.Errorf("attempt %x was rewritten", k)
		}
	}
	v := records[string(binary.BigEndian.AppendUint32(append([]byte(id), rawSep, 'a'), uint32(n)))]
	if len(v) == 0 || v[0] != 0xc1 {
		t.Fatalf("the attempt written after the upgrade is %x", v)
	}
	var stored syncproto.Attempt
	if err := store.DecodeAttempt(v, &stored); err != nil || !cmp.Equal(stored, after.Attempts[n]) {
		t.Fatalf("the new record decodes to %+v (%v), the warning holds %+v", stored, err, after.Attempts[n])
	}
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 || rep.Attempts != len(oldRecords)+1 {
		t.Fatalf("check (%d attempts): %+v %v", len(oldRecords)+1, rep, err)
	}
}

// a1Phone is cadre a1's phone in the schema-1 fixture.
const a1Phone = "00000000-0000-4000-8000-0000000000a1"

// recordedByA1 is the last warning a1's phone recorded an attempt on in
// the fixture's log at dir: a1 may record on it again.
func recordedByA1(t *testing.T, dir string) string {
	t.Helper()
	var id string
	for _, v := range rawValues(t, dir, "log") {
		var e store.LogEntry
		if err := store.DecodeLogEntry(v, &e); err != nil {
			t.Fatal(err)
		}
		if e.DeviceID == a1Phone && e.Op != nil && e.Op.Type == syncproto.OpRecorded {
			id = e.Op.WarningID
		}
	}
	if id == "" {
		t.Fatal("a1's phone recorded no attempt in the fixture")
	}
	return id
}
