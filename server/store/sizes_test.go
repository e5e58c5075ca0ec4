package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A push of n dissuasion attempts adds n entries to the log, one result
// per op, and to the warnings bucket the warning's n attempts beside its
// state (schema 8), its history record naming the n entries (schema 16);
// the warning count stays.
func TestStore_BucketSizes(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	ids := srv.Import(t, "center1", servertest.FeedRow("BS1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	a1 := srv.Login(t, "a1", servertest.CityPassword)

	before, err := srv.Store.BucketSizes()
	if err != nil {
		t.Fatal(err)
	}
	// The state, the history record, the latest entries.
	if before["warnings"].Entries != 3 || before["log"].Entries == 0 {
		t.Fatalf("before the push: warnings %+v, log %+v; want one warning's three records and a log", before["warnings"], before["log"])
	}
	const n = 5
	ops := make([]syncproto.Op, n)
	for i := range ops {
		reached := true
		ops[i] = syncproto.Op{ID: uuid.NewString(), ClientSeq: a1.NextSeq(), Type: syncproto.OpRecorded, WarningID: ids["BS1"],
			At: time.Now().Add(-time.Minute), Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodVisit,
				Reached: &reached, Outcome: syncproto.OutcomeDissuaded, Notes: fmt.Sprintf("第%d次上门", i+1)}}
	}
	resp, err := a1.Push(ctx, syncproto.PushRequest{DeviceID: a1.ID, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("push: %+v", r)
		}
	}

	after, err := srv.Store.BucketSizes()
	if err != nil {
		t.Fatal(err)
	}
	if got := after["log"].Entries - before["log"].Entries; got != n {
		t.Errorf("the log grew by %d entries, want %d", got, n)
	}
	if after["log"].Bytes <= before["log"].Bytes {
		t.Errorf("the log's bytes went from %d to %d", before["log"].Bytes, after["log"].Bytes)
	}
	// The history record grows by a seq an op, a byte or two each.
	if grew := after["warnings"].Bytes - before["warnings"].Bytes; after["warnings"].Entries != before["warnings"].Entries+n || grew <= 0 {
		t.Errorf("warnings went from %+v to %+v; want %d records more: the attempts", before["warnings"], after["warnings"], n)
	}
	center := syncproto.Actor{UserID: "center-reader", Role: syncproto.RoleCenter, Unit: servertest.UnitCity}
	d, err := srv.Store.WarningDetail(ctx, center, ids["BS1"])
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != n+1 {
		t.Fatalf("the warning's history holds %d entries, want the import and %d attempts", len(d.History), n)
	}
	for i, h := range d.History {
		if i > 0 && h.Seq <= d.History[i-1].Seq || i > 0 && h.Type != syncproto.OpRecorded {
			t.Errorf("history entry %d: seq %d type %s after seq %d", i, h.Seq, h.Type, d.History[i-1].Seq)
		}
	}
	if c, err := srv.Store.Contents(); err != nil || c.Warnings != 1 {
		t.Errorf("the store counts %d warnings (%v), want 1", c.Warnings, err)
	}
	// The idx bucket nests a bucket per scope: their entries count under it.
	if after["idx"].Entries == 0 {
		t.Errorf("idx holds no entry: nested buckets were not walked (%+v)", after["idx"])
	}

	srv.Close()
	if _, err := srv.Store.BucketSizes(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("a closed store's walk: %v, want ErrClosed", err)
	}
}

// Keys that arrive in order leave filled pages behind (schema.SetFill):
// bbolt's default, half, would leave the log, the open warnings' index
// and the lists' pages half empty for good, and the warnings' near it.
// A day's feed in imports of a hundred, each row in a village of one
// township: the log, the warnings and the lists get their keys in order
// or in order within a list.
func TestStore_PagesFilled(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	start := time.Now().Add(-24 * time.Hour)
	villages := []string{servertest.UnitVillA1, servertest.UnitVillA2}
	for batch := range 30 {
		rows := make([]syncproto.FeedWarning, 100)
		for i := range rows {
			n := batch*len(rows) + i
			risk := []string{syncproto.RiskHigh, syncproto.RiskMedium, syncproto.RiskLow}[n%3]
			rows[i] = servertest.FeedRow(fmt.Sprintf("PF%05d", n), villages[n%2], risk, start.Add(time.Duration(n)*time.Second))
		}
		srv.Import(t, "center1", rows...)
	}
	sizes, err := srv.Store.BucketSizes()
	if err != nil {
		t.Fatal(err)
	}
	// The feed's external ids map to the warnings' ids as 16 bytes.
	if ext := sizes["external"]; ext.Entries != 3000 || ext.Bytes != ext.Entries*int64(len("PF00000")+16) {
		t.Errorf("bucket external holds %+v, want 3000 entries of %d bytes", ext, len("PF00000")+16)
	}
	for name, least := range map[string]float64{"log": 0.9, "open": 0.85, "list": 0.7, "warnings": 0.6, "external": 0.85} {
		s := sizes[name]
		if s.Pages < 8*4096 {
			t.Fatalf("bucket %s has %d B of pages: too few for the test to say anything", name, s.Pages)
		}
		if fill := float64(s.PagesUsed) / float64(s.Pages); fill < least {
			t.Errorf("bucket %s's pages are %.0f%% full (%d of %d B), want at least %.0f%%", name, 100*fill, s.PagesUsed, s.Pages, 100*least)
		}
	}
}
