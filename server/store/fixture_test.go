package store_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/internal/testfs"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// v1Fixture is a store written by the schema-1 code (the commit before
// migrations existed): the small test city, a feed, ops of every type from
// several devices, a photo, a retention archive. Upgrade tests open copies
// of it. Regenerate it only with schema-1 code, and only if it is lost:
//
//	FIELDSYNC_WRITE_FIXTURE=1 go test -run TestWriteV1Fixture ./server/store/
const v1Fixture = "testdata/v1"

// fixtureStart is the fixture clock's first reading (08:30 in Beijing).
var fixtureStart = time.Date(2026, 3, 2, 0, 30, 0, 0, time.UTC)

// TestWriteV1Fixture writes testdata/v1 when FIELDSYNC_WRITE_FIXTURE=1.
func TestWriteV1Fixture(t *testing.T) {
	fw := startFixture(t, v1Fixture, 1, "", fixtureStart)
	srv, clock, login := fw.srv, fw.clock, fw.login
	ctx := context.Background()
	ids := srv.LoadCity(t)

	push := func(d *servertest.Device, ops ...syncproto.Op) {
		t.Helper()
		resp, err := d.Push(ctx, syncproto.PushRequest{DeviceID: d.ID, Ops: ops})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		for _, r := range resp.Results {
			if r.Status != syncproto.StatusApplied {
				t.Fatalf("push: %+v", r)
			}
		}
	}
	pull := func(d *servertest.Device) {
		t.Helper()
		cursor := ""
		for {
			resp, err := d.Pull(ctx, syncproto.PullRequest{DeviceID: d.ID, Cursor: cursor})
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			cursor = resp.Cursor
			if !resp.More {
				return
			}
		}
	}
	op := func(d *servertest.Device, typ, warning string, body syncproto.OpBody) syncproto.Op {
		return syncproto.Op{ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: d.NextSeq(), Type: typ,
			WarningID: warning, At: clock.Now().Add(-time.Minute), Body: body}
	}
	attempt := func(outcome string, reached bool, photos ...string) syncproto.OpBody {
		return syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodVisit, Reached: &reached,
			Outcome: outcome, Notes: "上门劝阻", Photos: photos}
	}
	// Fixed device ids keep the fixture readable in a debugger.
	center := login("center1", "00000000-0000-4000-8000-00000000c001")
	clock.Add(10 * time.Minute)
	row := func(ext, unit, risk string) syncproto.FeedWarning {
		return servertest.FeedRow(ext, unit, risk, clock.Now().Add(-time.Hour))
	}
	resp, err := center.ImportFeed(ctx, []syncproto.FeedWarning{
		row("FX1", servertest.UnitVillA1, syncproto.RiskHigh),
		row("FX2", servertest.UnitVillA1, syncproto.RiskMedium),
		row("FX3", servertest.UnitVillA2, syncproto.RiskHigh),
		row("FX4", servertest.UnitTownA, syncproto.RiskLow),
		row("FX5", servertest.UnitVillB1, syncproto.RiskMedium),
		row("FX6", servertest.UnitCounty, syncproto.RiskHigh),
	})
	if err != nil || len(resp.Created) != 6 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	w := map[string]string{}
	for _, c := range resp.Created {
		w[c.ExternalID] = c.ID
	}

	clock.Add(20 * time.Minute)
	leadA := login("leadA", "00000000-0000-4000-8000-00000000a0a0")
	push(leadA,
		op(leadA, syncproto.OpAssigned, w["FX3"], syncproto.OpBody{Assignee: ids["a2x"]}),
		op(leadA, syncproto.OpDispatched, w["FX4"], syncproto.OpBody{Unit: servertest.UnitVillA1}))

	clock.Add(time.Hour)
	a1 := login("a1", "00000000-0000-4000-8000-0000000000a1")
	pull(a1)
	photo, hash := servertest.PNG(strings.Repeat("现场照片", 20))
	push(a1,
		op(a1, syncproto.OpRecorded, w["FX1"], attempt(syncproto.OutcomeDissuaded, true, hash)),
		op(a1, syncproto.OpRecorded, w["FX2"], attempt(syncproto.OutcomeUnreachable, false)))
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatalf("photo: %v", err)
	}

	clock.Add(30 * time.Minute)
	a2x := login("a2x", "00000000-0000-4000-8000-000000000a2a")
	push(a2x,
		op(a2x, syncproto.OpRecorded, w["FX3"], attempt(syncproto.OutcomeRefused, true)),
		op(a2x, syncproto.OpEscalated, w["FX3"], syncproto.OpBody{Reason: "家属不配合"}))
	pull(a2x)

	clock.Add(15 * time.Minute)
	// a2y records on a warning assigned to a2x (flagged stale_assignee),
	// from a phone the admin later revokes.
	a2yOld := login("a2y", "00000000-0000-4000-8000-000000000a2b")
	push(a2yOld, op(a2yOld, syncproto.OpRecorded, w["FX3"], attempt(syncproto.OutcomeDissuaded, true)))
	admin := srv.Admin(t)
	if _, err := admin.RevokeDevice(ctx, a2yOld.ID, true); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	clock.Add(time.Hour)
	push(leadA,
		op(leadA, syncproto.OpReviewed, w["FX1"], syncproto.OpBody{Decision: syncproto.DecisionApprove, Comment: "已劝阻"}),
		op(leadA, syncproto.OpReviewed, w["FX2"], syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "再去一次"}))
	pull(leadA)

	// Devices that only pull: their LastSeen can come only from Created.
	clock.Add(5 * time.Minute)
	pull(login("b1", "00000000-0000-4000-8000-0000000000b1"))
	pull(login("county1", "00000000-0000-4000-8000-00000000c0c0"))

	// A month later the closed warning leaves the cadre's phone.
	clock.Add(31 * 24 * time.Hour)
	if archived, _, err := srv.App.Sweep(ctx); err != nil || archived != 1 {
		t.Fatalf("sweep: %d archived, %v", archived, err)
	}
	clock.Add(time.Hour)
	a1 = login("a1", a1.ID)
	pull(a1)
	fw.finish()
}

// fixtureWriter is a server writing a fixture: on a copy of the fixture
// before it (or a new store), on a fake clock, its devices signed in with
// fixed ids that keep the fixture readable in a debugger.
type fixtureWriter struct {
	t     *testing.T
	dir   string // the store being written
	out   string // the fixture it becomes
	srv   *servertest.Server
	clock *fakeclock.Clock
}

// startFixture skips the test unless FIELDSYNC_WRITE_FIXTURE=1, checks that
// this code writes schema, and starts a server on a copy of the fixture
// from ("": a new store) with its clock at start, for fixture out.
func startFixture(t *testing.T, out string, schema int, from string, start time.Time) *fixtureWriter {
	t.Helper()
	if os.Getenv("FIELDSYNC_WRITE_FIXTURE") != "1" {
		t.Skip("set FIELDSYNC_WRITE_FIXTURE=1 to rewrite " + out)
	}
	if store.SchemaVersion != schema {
		t.Fatalf("this code writes schema %d; the fixture must come from schema-%d code", store.SchemaVersion, schema)
	}
	fw := &fixtureWriter{t: t, dir: t.TempDir(), out: out, clock: fakeclock.At(start)}
	if from != "" {
		testfs.CopyTree(t, from, fw.dir)
	}
	srv, err := servertest.Open(servertest.Options{Dir: fw.dir, Now: fw.clock.Now, AccessTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fw.srv = srv
	return fw
}

// login signs username in from the device with deviceID.
func (fw *fixtureWriter) login(username, deviceID string) *servertest.Device {
	fw.t.Helper()
	d, err := fw.srv.LoginDevice(username, servertest.CityPassword, deviceID)
	if err != nil {
		fw.t.Fatalf("login %s: %v", username, err)
	}
	return d
}

// finish stops the server and puts what it wrote in place of the fixture.
func (fw *fixtureWriter) finish() {
	fw.t.Helper()
	if err := fw.srv.Close(); err != nil {
		fw.t.Fatal(err)
	}
	if err := os.RemoveAll(fw.out); err != nil {
		fw.t.Fatal(err)
	}
	testfs.CopyTree(fw.t, fw.dir, fw.out)
	fw.t.Logf("wrote %s", fw.out)
}

// v2Fixture is the schema-1 fixture opened, worked on and index-compacted
// by the schema-2 code: a store whose compaction left one global tombstone
// horizon in meta and no horizon per scope. Regenerate it only with
// schema-2 code, and only if it is lost:
//
//	FIELDSYNC_WRITE_FIXTURE=1 go test -run TestWriteV2Fixture ./server/store/
const v2Fixture = "testdata/v2"

// v2Start is when the schema-2 code opened the v1 fixture: after its
// last entry.
var v2Start = fixtureStart.Add(40 * 24 * time.Hour)

// TestWriteV2Fixture writes testdata/v2 when FIELDSYNC_WRITE_FIXTURE=1.
func TestWriteV2Fixture(t *testing.T) {
	fw := startFixture(t, v2Fixture, 2, v1Fixture, v2Start)
	srv, clock := fw.srv, fw.clock
	ctx := context.Background()
	leadA := fw.login("leadA", "00000000-0000-4000-8000-00000000a0a0")
	page, err := leadA.Pull(ctx, syncproto.PullRequest{DeviceID: leadA.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var fx4 string
	for _, c := range page.Changes {
		if w, ok := c.Data.(*syncproto.Warning); ok && w.ExternalID == "FX4" {
			fx4 = w.ID
		}
	}
	if fx4 == "" {
		t.Fatal("no FX4 in leadA's scope")
	}
	// FX4 leaves village A1 (a remove in unit/411002001001), and the
	// compaction a month later drops that remove.
	clock.Add(time.Hour)
	resp, err := leadA.Push(ctx, syncproto.PushRequest{DeviceID: leadA.ID, Ops: []syncproto.Op{{
		ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: page.LastClientSeq + 1, Type: syncproto.OpDispatched,
		WarningID: fx4, At: clock.Now().Add(-time.Minute), Body: syncproto.OpBody{Unit: servertest.UnitVillA2},
	}}})
	if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("dispatch: %+v %v", resp, err)
	}
	clock.Add(31 * 24 * time.Hour)
	rep, err := srv.Store.CompactIndex(ctx, store.DefaultTombstoneHorizon)
	if err != nil || rep.Tombstones == 0 || rep.HorizonSeq != resp.ServerSeq {
		t.Fatalf("compaction: %+v %v", rep, err)
	}
	t.Logf("horizon seq %d, %d removes dropped", rep.HorizonSeq, rep.Tombstones)
	fw.finish()
}

// v3Fixture is the schema-2 fixture opened and worked on by the schema-3
// code, without a compaction since: warnings that changed several times
// (attempts, a dispatch away and back, a photo arriving after its
// attempt), a unit renamed and a cadre renamed, so its scope indexes hold
// several entries per record. Regenerate it only with schema-3 code, and
// only if it is lost:
//
//	FIELDSYNC_WRITE_FIXTURE=1 go test -run TestWriteV3Fixture ./server/store/
const v3Fixture = "testdata/v3"

// v3Start is when the schema-3 code opened the v2 fixture: after its
// compaction.
var v3Start = v2Start.Add(80 * 24 * time.Hour)

// TestWriteV3Fixture writes testdata/v3 when FIELDSYNC_WRITE_FIXTURE=1.
func TestWriteV3Fixture(t *testing.T) {
	fw := startFixture(t, v3Fixture, 3, v2Fixture, v3Start)
	srv, clock, login := fw.srv, fw.clock, fw.login
	ctx := context.Background()
	// seqs continue each fixed device's client_seq from what the server
	// has handled.
	seqs := map[*servertest.Device]uint64{}
	pull := func(d *servertest.Device) map[string]string {
		t.Helper()
		ids := map[string]string{}
		cursor := ""
		for {
			resp, err := d.Pull(ctx, syncproto.PullRequest{DeviceID: d.ID, Cursor: cursor})
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			for _, c := range resp.Changes {
				if w, ok := c.Data.(*syncproto.Warning); ok {
					ids[w.ExternalID] = w.ID
				}
			}
			seqs[d] = resp.LastClientSeq
			cursor = resp.Cursor
			if !resp.More {
				return ids
			}
		}
	}
	push := func(d *servertest.Device, typ, warning string, body syncproto.OpBody) {
		t.Helper()
		clock.Add(10 * time.Minute)
		seqs[d]++
		resp, err := d.Push(ctx, syncproto.PushRequest{DeviceID: d.ID, Ops: []syncproto.Op{{
			ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: seqs[d], Type: typ, WarningID: warning,
			At: clock.Now().Add(-time.Minute), Body: body,
		}}})
		if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("push %s: %+v %v", typ, resp, err)
		}
	}
	attempt := func(outcome string, reached bool, photos ...string) syncproto.OpBody {
		return syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodVisit, Reached: &reached,
			Outcome: outcome, Notes: "再次上门", Photos: photos}
	}

	county1 := login("county1", "00000000-0000-4000-8000-00000000c0c0")
	w := pull(county1)
	leadA := login("leadA", "00000000-0000-4000-8000-00000000a0a0")
	pull(leadA)
	a1 := login("a1", "00000000-0000-4000-8000-0000000000a1")
	pull(a1)
	if w["FX2"] == "" || w["FX6"] == "" {
		t.Fatalf("county1's scope: %v", w)
	}
	// FX2 changes three times in a1's scopes, the last time only by its
	// photo arriving (index entries at a seq that is not its version).
	push(a1, syncproto.OpRecorded, w["FX2"], attempt(syncproto.OutcomeUnreachable, false))
	push(a1, syncproto.OpRecorded, w["FX2"], attempt(syncproto.OutcomeRefused, true))
	photo, hash := servertest.PNG(strings.Repeat("再访照片", 20))
	push(a1, syncproto.OpRecorded, w["FX2"], attempt(syncproto.OutcomeDissuaded, true, hash))
	clock.Add(10 * time.Minute)
	if _, err := a1.PutBlob(ctx, hash, "image/png", photo); err != nil {
		t.Fatalf("photo: %v", err)
	}
	// FX6 goes from the county to village A1 (a1 gets it), then to A2:
	// a put then a remove in a1's scopes.
	push(county1, syncproto.OpDispatched, w["FX6"], syncproto.OpBody{Unit: servertest.UnitVillA1})
	push(county1, syncproto.OpDispatched, w["FX6"], syncproto.OpBody{Unit: servertest.UnitVillA2})
	// A unit and a cadre renamed: directory entries twice over.
	admin := srv.Admin(t)
	if _, err := admin.UpsertUnits(ctx, []syncproto.UnitInput{{Code: servertest.UnitVillA1, Name: "八一路新社区"}}); err != nil {
		t.Fatalf("rename unit: %v", err)
	}
	if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "a2y", Name: "杨村三改", Unit: servertest.UnitVillA2}}); err != nil {
		t.Fatalf("rename user: %v", err)
	}
	pull(county1)
	pull(leadA)
	pull(a1)
	fw.finish()
}
