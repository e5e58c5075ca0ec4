package store_test

import (
	"bytes"
	"context"
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

// TestMigrate_CompactStates: the upgrades of a schema-1 store leave its
// states in the older form, and schema 14 rewrites none of them; the state
// of a warning changed after it is compact, reads as the change left it,
// and lists, the statistics and fieldsyncd check read both forms together.
func TestMigrate_CompactStates(t *testing.T) {
	ctx := context.Background()
	dir := copyV1(t)
	// A warning a1's phone recorded on before the upgrade.
	id := recordedByA1(t, dir)

	srv := servertest.Start(t, servertest.Options{Dir: dir})
	before, err := srv.Store.Warning(id)
	if err != nil || before == nil {
		t.Fatalf("warning %s after the upgrade: %+v %v", id, before, err)
	}
	oldStates := map[string][]byte{}
	err = srv.Store.RawDB().View(func(tx *bolt.Tx) error {
		return rawStates(tx, func(id, v []byte) error {
			if v[0] == 0xc1 {
				t.Errorf("the upgrade wrote the state of warning %s compact", id)
			}
			oldStates[string(id)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil || len(oldStates) < 2 {
		t.Fatalf("%d states after the upgrade: %v", len(oldStates), err)
	}
	a1, err := srv.LoginDevice("a1", servertest.CityPassword, a1Phone)
	if err != nil {
		t.Fatal(err)
	}
	reached := true
	op := syncproto.Op{ID: uuid.NewString(), ClientSeq: 3, Type: syncproto.OpRecorded, WarningID: id, At: time.Now().UTC().Truncate(time.Second),
		Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeRefused,
			Notes: "再次电话"}}
	resp, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{op}})
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("push after the upgrade: %+v %v", resp, err)
	}
	after, err := srv.Store.Warning(id)
	if err != nil || after == nil || after.Version <= before.Version {
		t.Fatalf("warning %s after the push: %+v %v", id, after, err)
	}
	// A list filtered on a name finds the rewritten state and one of the
	// older form alike: both keep the name as plain text.
	var other syncproto.Warning
	for k, v := range oldStates {
		if k != id {
			rawState(t, v, &other)
			if other.Name != "" && other.Name != after.Name {
				break
			}
		}
	}
	if other.Name == "" || other.Name == after.Name {
		t.Fatal("the fixture has no other warning with a name of its own")
	}
	for _, w := range []*syncproto.Warning{after, &other} {
		list, err := srv.Store.List(store.ListQuery{Unit: servertest.UnitCity, Text: w.Name, Sort: store.SortReceived, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, it := range list.Items {
			found = found || it.ID == w.ID
		}
		if !found {
			t.Errorf("a list filtered on %q lacks warning %s: %+v", w.Name, w.ID, list.Items)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	states := map[string][]byte{}
	rawView(t, dir, func(tx *bolt.Tx) error {
		return rawStates(tx, func(id, v []byte) error {
			states[string(id)] = bytes.Clone(v)
			return nil
		})
	})
	for k, v := range oldStates {
		if k != id && !bytes.Equal(states[k], v) {
			t.Errorf("the state of warning %s was rewritten", k)
		}
	}
	v := states[id]
	if len(v) == 0 || v[0] != 0xc1 {
		t.Fatalf("the state written after the upgrade is %x", v)
	}
	if len(v) >= len(oldStates[id]) {
		t.Errorf("the compact state takes %d B, its older form %d B", len(v), len(oldStates[id]))
	}
	var stored syncproto.Warning
	if err := store.DecodeState(v, &stored); err != nil {
		t.Fatal(err)
	}
	want := *after
	want.Attempts = nil
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Fatalf("the new state decodes otherwise than the warning read (-read +stored):\n%s", diff)
	}
	if !bytes.Contains(v, []byte(stored.Name)) || stored.Name == "" {
		t.Errorf("the compact state lacks the name %q as plain text", stored.Name)
	}
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}
