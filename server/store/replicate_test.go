package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// entryLog is a replicated log of one node: Options.Replicate that
// numbers each group's entry, applies it to the store through ApplyEntry
// as a cluster's state machine would, and keeps the entry and what
// applying it answered.
type entryLog struct {
	mu      sync.Mutex
	entries [][]byte
	applied []*store.Applied
	failed  error
}

func (l *entryLog) replicate(_ context.Context, st *store.Store, entry []byte) (*store.Applied, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, err := st.ApplyEntry(uint64(len(l.entries)+1), entry)
	if err != nil {
		l.failed = err
		return nil, err
	}
	l.entries = append(l.entries, bytes.Clone(entry))
	l.applied = append(l.applied, a)
	return a, nil
}

// TestStore_ReplayedEntriesMatch drives a real server whose every write
// goes through Options.Replicate (sign-ins, refreshes, sign-outs, a feed
// import, the SDK's pushes and pulls, an admin's change of a user, a
// photo, a key rotation, the last-seen flush, retention, index
// compaction, the expiry of devices and of photos) and replays the
// entries it captured into a new store through ApplyEntry: both files
// hold the same buckets, keys, values and sequences, and every command
// answered the same on both.
func TestStore_ReplayedEntriesMatch(t *testing.T) {
	clock := fakeclock.At(fixtureStart)
	var log entryLog
	srv := servertest.Start(t, servertest.Options{Now: clock.Now, AccessTTL: 600 * 24 * time.Hour, Replicate: log.replicate})
	ctx := context.Background()
	// The incarnation is state every node must share: a cluster's first
	// node sets it by a command.
	if err := srv.Store.NewIncarnation(ctx); err != nil {
		t.Fatal(err)
	}
	ids := srv.LoadCity(t)
	driveCity(t, srv, clock, ids)

	if log.failed != nil {
		t.Fatalf("an entry failed to apply: %v", log.failed)
	}
	// Every kind of command was made, so every kind was replayed.
	seen := map[int]bool{}
	for _, entry := range log.entries {
		kinds, err := store.EntryKinds(entry)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kinds {
			seen[k] = true
		}
	}
	for k := 1; k <= store.LastCommandKind; k++ {
		if !seen[k] {
			t.Errorf("no command of kind %d was made", k)
		}
	}
	if len(log.entries) == 0 || srv.Store.AppliedIndex() != uint64(len(log.entries)) {
		t.Fatalf("applied index %d after %d entries", srv.Store.AppliedIndex(), len(log.entries))
	}

	replica, err := store.Open(t.TempDir(), store.Options{Create: true, Now: func() time.Time {
		t.Error("a replayed entry read the replica's clock")
		return time.Time{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	for i, entry := range log.entries {
		a, err := replica.ApplyEntry(uint64(i+1), entry)
		if err != nil {
			t.Fatalf("replay entry %d: %v", i+1, err)
		}
		if got, want := outcomes(t, a), outcomes(t, log.applied[i]); got != want {
			t.Errorf("entry %d answered\n%s\non the replica, and\n%s\non the server", i+1, got, want)
		}
	}
	// An entry applied already is skipped: a node replaying its log after
	// a restart writes nothing twice.
	before := dump(t, replica.RawDB())
	if _, err := replica.ApplyEntry(1, log.entries[0]); err != nil {
		t.Fatal(err)
	}
	if diff := diffDumps(dump(t, replica.RawDB()), before); diff != "" {
		t.Errorf("applying entry 1 again changed the replica:\n%s", diff)
	}

	if diff := diffDumps(dump(t, replica.RawDB()), dump(t, srv.Store.RawDB())); diff != "" {
		t.Errorf("the replica differs from the server:\n%s", diff)
	}
	if replica.Incarnation() != srv.Store.Incarnation() || replica.AppliedIndex() != srv.Store.AppliedIndex() {
		t.Errorf("the replica's incarnation or applied index is not the server's")
	}

	// The same entries applied in raft's batches, several to one
	// transaction (ApplyEntries), give the same answers and the same store.
	batched, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { batched.Close() })
	for i, size := 0, 1; i < len(log.entries); i, size = i+size, size%7+1 {
		var batch []store.Entry
		// Each batch after the first starts with the previous batch's
		// last entry again, applied already: it is skipped.
		from := max(i-1, 0)
		for j := from; j < min(i+size, len(log.entries)); j++ {
			batch = append(batch, store.Entry{Index: uint64(j + 1), Data: log.entries[j]})
		}
		applied, err := batched.ApplyEntries(batch)
		if err != nil || len(applied) != len(batch) {
			t.Fatalf("apply entries %d to %d: %d applied, %v", from+1, i+size, len(applied), err)
		}
		for k, a := range applied[i-from:] {
			if got, want := outcomes(t, a), outcomes(t, log.applied[i+k]); got != want {
				t.Errorf("entry %d answered\n%s\nin a batch, and\n%s\non the server", i+k+1, got, want)
			}
		}
	}
	if diff := diffDumps(dump(t, batched.RawDB()), dump(t, srv.Store.RawDB())); diff != "" {
		t.Errorf("the store applied in batches differs from the server:\n%s", diff)
	}

	// A batch whose third entry cannot be applied applies the two before
	// it, records the second as the last applied, and returns the failure.
	partial, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { partial.Close() })
	bad := []store.Entry{{Index: 1, Data: log.entries[0]}, {Index: 2, Data: log.entries[1]}, {Index: 3, Data: []byte{0xff, 1, 2}}, {Index: 4, Data: log.entries[3]}}
	applied, err := partial.ApplyEntries(bad)
	if err == nil || len(applied) != 2 || partial.AppliedIndex() != 2 {
		t.Errorf("a batch with a broken third entry: %d applied, applied index %d, error %v; want 2, 2 and an error", len(applied), partial.AppliedIndex(), err)
	}
}

// driveCity runs a small city's day and a year after it on srv, through
// the API, the SDK and the app's upkeep.
func driveCity(t *testing.T, srv *servertest.Server, clock *fakeclock.Clock, ids map[string]string) {
	t.Helper()
	ctx := context.Background()
	row := func(ext, unit, risk string) syncproto.FeedWarning {
		return servertest.FeedRow(ext, unit, risk, clock.Now().Add(-time.Hour))
	}
	w := srv.Import(t, "center1",
		row("R1", servertest.UnitVillA1, syncproto.RiskHigh),
		row("R2", servertest.UnitVillA1, syncproto.RiskMedium),
		row("R3", servertest.UnitVillA2, syncproto.RiskLow))

	// A cadre's phone: the real SDK pulls, records with a photo, pushes.
	phone, err := clientsdk.Open(t.TempDir(), clientsdk.Options{ServerURL: srv.URL, Key: make([]byte, 32), DeviceName: "test", Platform: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	if _, err := phone.Login(ctx, "a1", servertest.CityPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	photo, sum := servertest.PNG("replicated")
	for _, id := range []string{w["R1"], w["R2"]} {
		if _, err := phone.RecordAttempt(id, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Notes: "已当面劝阻"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	if _, err := a1.PutBlob(ctx, sum, "image/png", photo); err != nil {
		t.Fatalf("photo: %v", err)
	}

	// The lead closes one, returns the other.
	lead := srv.Login(t, "leadA", servertest.CityPassword)
	op := func(typ, warning string, body syncproto.OpBody) syncproto.Op {
		return syncproto.Op{ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: lead.NextSeq(), Type: typ,
			WarningID: warning, At: clock.Now().Add(-time.Minute), Body: body}
	}
	clock.Add(time.Hour)
	if _, err := lead.Push(ctx, syncproto.PushRequest{DeviceID: lead.ID, Ops: []syncproto.Op{
		op(syncproto.OpReviewed, w["R1"], syncproto.OpBody{Decision: syncproto.DecisionApprove, Comment: "已劝阻"}),
		op(syncproto.OpReviewed, w["R2"], syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "再去一次"}),
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Sessions: a refresh, a retry of it, a sign-out, a revocation.
	a2x := srv.Login(t, "a2x", servertest.CityPassword)
	refresh := syncproto.RefreshRequest{RefreshToken: a2x.Login.RefreshToken, DeviceID: a2x.ID}
	if _, err := a2x.Refresh(ctx, refresh); err != nil {
		t.Fatal(err)
	}
	a2x.Refresh(ctx, refresh) // a retry, in grace or not: either is a write
	a2x.Logout(ctx)
	admin := srv.Admin(t)
	if _, err := admin.RevokeDevice(ctx, a1.ID, false); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	// Administration: a user renamed, a unit renamed, the keys rotated.
	if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "b1", Name: "黄村四（改）"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpsertUnits(ctx, []syncproto.UnitInput{{Code: servertest.UnitVillB1, Name: "新村"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.RotateKeys(ctx, srv.Store, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.App.FlushSightings(ctx); err != nil {
		t.Fatal(err)
	}
	center := syncproto.Actor{UserID: ids["center1"], DeviceID: admin.ID, Role: syncproto.RoleCenter, Unit: servertest.UnitCity}
	if err := srv.Store.AuditList(ctx, center, []syncproto.WarningItem{{ID: w["R3"], Unit: servertest.UnitVillA2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.WarningDetail(ctx, center, w["R3"]); err != nil {
		t.Fatal(err)
	}
	// A seeded history (the demo's), and a console session the next
	// start ends.
	a2y := srv.Login(t, "a2y", servertest.CityPassword)
	if _, err := srv.Store.Replay(ctx, []store.Replayed{{At: clock.Now(), Actor: syncproto.Actor{UserID: ids["a2y"], DeviceID: a2y.ID}}}); err != nil {
		t.Fatal(err)
	}
	user, err := srv.Store.User(ids["leadA"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.Login(ctx, user, store.SignIn{DeviceID: uuid.NewString(), Console: true, RefreshTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Store.EndConsoleSessions(ctx, ""); err != nil || n != 1 {
		t.Fatalf("end console sessions: %d, %v", n, err)
	}

	// A year on: the closed warning is archived and redacted, the indexes
	// compacted, idle devices and unnamed photos forgotten.
	clock.Add(400 * 24 * time.Hour)
	if archived, redacted, err := srv.App.Sweep(ctx); err != nil || archived+redacted == 0 {
		t.Fatalf("sweep: %d archived, %d redacted, %v", archived, redacted, err)
	}
	if rep, err := srv.App.Compact(ctx); err != nil || rep.Superseded+rep.Tombstones == 0 {
		t.Fatalf("compact: %+v %v", rep, err)
	}
	if _, err := srv.Store.ExpireDevices(ctx); err != nil {
		t.Fatal(err)
	}
	other, otherSum := servertest.PNG("named by nobody")
	if _, err := lead.PutBlob(ctx, otherSum, "image/png", other); err != nil {
		t.Fatalf("photo: %v", err)
	}
	clock.Add(100 * 24 * time.Hour)
	if n, err := srv.Store.SweepPhotos(ctx, time.Hour); err != nil || n == 0 {
		t.Fatalf("sweep photos: %d, %v", n, err)
	}
	// The archive's removes are past the tombstone horizon now.
	if rep, err := srv.App.Compact(ctx); err != nil || rep.Tombstones == 0 {
		t.Fatalf("compact: %+v %v", rep, err)
	}
}

// outcomes writes what each command of an entry answered, for comparing
// two nodes' answers.
func outcomes(t *testing.T, a *store.Applied) string {
	t.Helper()
	var b strings.Builder
	for i := range a.Len() {
		v, err := a.Outcome(i)
		data, jerr := json.Marshal(v)
		if jerr != nil {
			t.Fatalf("encode outcome: %v", jerr)
		}
		fmt.Fprintf(&b, "%d: %s %v\n", i, data, err)
	}
	return b.String()
}

// dump reads every key and value of db, nested buckets included, and each
// bucket's sequence, by path.
func dump(t *testing.T, db *bolt.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(path string, b *bolt.Bucket) error
	walk = func(path string, b *bolt.Bucket) error {
		out[path+" #seq"] = fmt.Sprint(b.Sequence())
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(path+"/"+fmt.Sprintf("%q", k), b.Bucket(k))
			}
			out[path+" "+fmt.Sprintf("%q", k)] = string(v)
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffDumps lists the paths whose values differ, at most 20 of them.
func diffDumps(got, want map[string]string) string {
	var diff []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diff = append(diff, "missing "+k)
		} else if g != v {
			diff = append(diff, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, "extra "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 20 {
		diff = append(diff[:20], fmt.Sprintf("... %d more", len(diff)-20))
	}
	return strings.Join(diff, "\n")
}

// TestStore_AppliedIndex: one node counts its group commits as the
// applied index, one per group, kept in the file across a restart.
func TestStore_AppliedIndex(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.AppliedIndex() != 0 {
		t.Fatalf("a new store's applied index is %d", st.AppliedIndex())
	}
	servertest.LoadStore(t, st, servertest.City())
	if got := st.AppliedIndex(); got != 2 { // the units, then the users
		t.Fatalf("applied index %d after two writes", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after a restart", got)
	}
	if err := st.NewIncarnation(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.AppliedIndex(); got != 3 {
		t.Fatalf("applied index %d after one more write", got)
	}
}

// TestStore_ReplicatedActorKeepsSession: a command carries its actor's
// session, which the wire's Actor leaves out, so a push through the
// replicated path with a token of a session that has ended is refused as
// on one node.
func TestStore_ReplicatedActorKeepsSession(t *testing.T) {
	var log entryLog
	st, err := store.Open(t.TempDir(), store.Options{Create: true, Replicate: log.replicate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	users := servertest.LoadStore(t, st, servertest.City())
	a1 := users["a1"]
	ctx := context.Background()
	device := uuid.NewString()
	s, err := st.Login(ctx, &a1, store.SignIn{DeviceID: device, RefreshTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Logout(ctx, device); err != nil {
		t.Fatal(err)
	}
	actor := a1.Actor(device)
	actor.Session = s.Number
	_, err = st.Push(ctx, actor, nil)
	if code := syncproto.ErrorCode(err); code != syncproto.CodeTokenExpired {
		t.Fatalf("a push of an ended session: %v (code %q), want %s", err, code, syncproto.CodeTokenExpired)
	}
}
