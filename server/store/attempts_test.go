package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// rawStored is a warning as a schema-8 file holds it: its state, and its
// attempt records by ordinal.
type rawStored struct {
	state    syncproto.Warning
	attempts map[uint32]syncproto.Attempt
}

// rawAttempts reads every warning of a schema-8 store as tx sees it: its
// attempts lie beside its state (rawfile_test.go), in either form.
func rawAttempts(tb testing.TB, tx *bolt.Tx) map[string]*rawStored {
	tb.Helper()
	out := map[string]*rawStored{}
	err := rawStates(tx, func(k, v []byte) error {
		r := &rawStored{attempts: map[uint32]syncproto.Attempt{}}
		rawState(tb, v, &r.state)
		out[string(k)] = r
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	err = rawSubRecords(tx, 'a', func(k, rest, v []byte) error {
		if len(rest) != 4 {
			return fmt.Errorf("attempt key %q: %d bytes of ordinal", k, len(rest))
		}
		id, i := string(k), binary.BigEndian.Uint32(rest)
		r := out[id]
		if r == nil {
			return fmt.Errorf("attempt %d of warning %s, which the store does not hold", i, id)
		}
		var a syncproto.Attempt
		if err := store.DecodeAttempt(v, &a); err != nil {
			return fmt.Errorf("attempt %d of warning %s: %w", i, id, err)
		}
		r.attempts[i] = a
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// assembled is r's warning as a reader sees it: the state with its
// attempts in order; a gap in the ordinals fails the test.
func (r *rawStored) assembled(tb testing.TB) *syncproto.Warning {
	tb.Helper()
	w := r.state
	if len(w.Attempts) > 0 {
		tb.Fatalf("warning %s: the state holds %d attempts of its own", w.ID, len(w.Attempts))
	}
	w.Attempts = []syncproto.Attempt{}
	for i := range len(r.attempts) {
		a, ok := r.attempts[uint32(i)]
		if !ok {
			tb.Fatalf("warning %s: attempts %v have no ordinal %d", w.ID, r.attempts, i)
		}
		w.Attempts = append(w.Attempts, a)
	}
	return &w
}

// TestStore_AttemptsApart: a warning's state is stored without its
// attempts and each attempt as a record of its own, which a reader
// assembles; a review leaves the attempt records as they were, and the
// redaction erases the notes and place from them too.
func TestStore_AttemptsApart(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(fixtureStart)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Create: true, NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	users := servertest.LoadStore(t, st, servertest.City())
	center, a1, leadA := users["center1"], users["a1"], users["leadA"]
	cadre, lead := a1.Actor(uuid.NewString()), leadA.Actor(uuid.NewString())
	for _, d := range []struct {
		u     *store.User
		actor syncproto.Actor
	}{{&a1, cadre}, {&leadA, lead}} {
		if _, err := st.Login(ctx, d.u, store.SignIn{DeviceID: d.actor.DeviceID, Name: "phone", Platform: "test", RefreshTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	feed, err := st.ImportFeed(ctx, center.Actor(""), []store.FeedRow{{Num: 1,
		Warning: servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskLow, fixtureStart.Add(-time.Hour))}})
	if err != nil || len(feed.Created) != 1 {
		t.Fatalf("import: %+v %v", feed, err)
	}
	id := feed.Created[0].ID
	push := func(actor syncproto.Actor, op syncproto.Op) {
		t.Helper()
		op.ID, op.WarningID, op.At = uuid.NewString(), id, clock.Now()
		resp, err := st.Push(ctx, actor, []syncproto.Op{op})
		if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("push %s: %+v %v", op.Type, resp, err)
		}
	}
	reached := true
	push(cadre, syncproto.Op{ClientSeq: 1, Type: syncproto.OpRecorded, Body: syncproto.OpBody{AttemptID: uuid.NewString(),
		Method: syncproto.MethodVisit, Reached: &reached, Outcome: syncproto.OutcomeDissuaded, Notes: "对方说出了银行卡号",
		Location: &syncproto.Location{Lat: 34.02, Lng: 113.85}, Photos: []string{strings.Repeat("ab", 32)}}})
	clock.Add(time.Hour)
	push(cadre, syncproto.Op{ClientSeq: 2, Type: syncproto.OpRecorded, Body: syncproto.OpBody{AttemptID: uuid.NewString(),
		Method: syncproto.MethodPhone, Reached: &reached, Outcome: syncproto.OutcomeDissuaded, Notes: "回访"}})

	stored := func() (*rawStored, [][]byte) {
		t.Helper()
		var r *rawStored
		var values [][]byte
		err := st.RawDB().View(func(tx *bolt.Tx) error {
			r = rawAttempts(t, tx)[id]
			return rawSubRecords(tx, 'a', func(w, _, v []byte) error {
				if string(w) == id {
					values = append(values, bytes.Clone(v))
				}
				return nil
			})
		})
		if err != nil || r == nil {
			t.Fatalf("warning %s in the file: %v", id, err)
		}
		return r, values
	}
	r, before := stored()
	w, err := st.Warning(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Attempts) != 2 || w.Attempts[0].Notes == "" || w.Attempts[0].Location == nil || len(w.Attempts[0].Photos) != 1 {
		t.Fatalf("the warning read back: %+v", w.Attempts)
	}
	if diff := cmp.Diff(w, r.assembled(t)); diff != "" {
		t.Fatalf("the file's state and attempts, assembled, differ from the warning read (-read +file):\n%s", diff)
	}

	clock.Add(time.Hour)
	push(lead, syncproto.Op{ClientSeq: 1, Type: syncproto.OpReviewed, Body: syncproto.OpBody{Decision: syncproto.DecisionApprove}})
	r, after := stored()
	if r.state.Status != syncproto.WarningClosed {
		t.Fatalf("after the approval the state is %s", r.state.Status)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("a review changed the attempt records (-before +after):\n%s", diff)
	}

	clock.Add(400 * 24 * time.Hour)
	if _, _, err := st.Sweep(ctx, time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	r, _ = stored()
	if r.state.RedactedAt == nil {
		t.Fatal("the sweep did not redact the warning")
	}
	for i, a := range r.attempts {
		if a.Notes != "" || a.Location != nil {
			t.Errorf("attempt %d keeps its notes %q or place %v after the redaction", i, a.Notes, a.Location)
		}
	}
	if w, err = st.Warning(id); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, r.assembled(t)); diff != "" {
		t.Fatalf("after the redaction (-read +file):\n%s", diff)
	}
	st.Close()
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 || rep.Attempts != 2 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// TestAttemptEqual: an attempt differing from another in any one field
// is not equal to it, so a save rewrites its record.
func TestAttemptEqual(t *testing.T) {
	base := syncproto.Attempt{ID: "a", By: "u", DeviceID: "d", Method: syncproto.MethodVisit, Reached: true,
		Outcome: syncproto.OutcomeDissuaded, LossFen: 1, Notes: "n", At: fixtureStart, ReceivedAt: fixtureStart,
		Location: &syncproto.Location{Lat: 1, Lng: 2, Accuracy: 3}, Photos: []string{"p"}, Version: 7}
	same := base
	same.Location = &syncproto.Location{Lat: 1, Lng: 2, Accuracy: 3}
	same.Photos = []string{"p"}
	same.At = fixtureStart.In(time.FixedZone("CST", 8*3600))
	if !store.AttemptEqual(&base, &same) {
		t.Fatal("equal attempts in other memory (and another time zone) compare unequal")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		other := base
		other.Location = &syncproto.Location{Lat: 1, Lng: 2, Accuracy: 3}
		v := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Type {
		case reflect.TypeOf(""):
			v.SetString("other")
		case reflect.TypeOf(true):
			v.SetBool(false)
		case reflect.TypeOf(int64(0)):
			v.SetInt(2)
		case reflect.TypeOf(uint64(0)):
			v.SetUint(8)
		case reflect.TypeOf(time.Time{}):
			v.Set(reflect.ValueOf(fixtureStart.Add(time.Second)))
		case reflect.TypeOf(&syncproto.Location{}):
			other.Location.Accuracy = 4
		case reflect.TypeOf([]string{}):
			v.Set(reflect.ValueOf([]string{"p", "q"}))
		default:
			t.Fatalf("field %s of type %s: the test does not know how to change it", f.Name, f.Type)
		}
		if store.AttemptEqual(&base, &other) {
			t.Errorf("attempts differing in %s compare equal", f.Name)
		}
	}
	noPlace := base
	noPlace.Location = nil
	if store.AttemptEqual(&base, &noPlace) || store.AttemptEqual(&noPlace, &base) {
		t.Error("an attempt without a place compares equal to one with")
	}
}

// TestMigrate_V3AttemptsApart: the schema 7 upgrade, stopped after its
// first step and resumed, moves every attempt of a schema-3 store
// (upgraded through 6) into records of its own and deletes the list
// summaries; every warning reads back as it was, a list still finds them,
// and the check is clean. The resumed Open goes on to schema 8, so the
// file read at the end has schema 8's layout.
func TestMigrate_V3AttemptsApart(t *testing.T) {
	dir, _ := copyV3(t)
	old := rawWarnings(t, dir)
	total := 0
	for _, w := range old {
		total += len(w.Attempts)
	}
	if len(old) <= 2 || total < 2 {
		t.Fatalf("the fixture has %d warnings and %d attempts: the test wants several of each", len(old), total)
	}
	defer store.SetMigrationChunk(2)()
	stop := store.StopMigrationToAfter(7, 1)
	_, err := store.Open(dir, store.Options{})
	stop()
	if !errors.Is(err, store.ErrMigrationStopped) {
		t.Fatalf("open with the migration stopped: %v", err)
	}
	if got := rawSchema(t, dir); got != 6 {
		t.Fatalf("a stopped migration left schema %d", got)
	}
	rawView(t, dir, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("meta")).Get([]byte("migrate7_next")) == nil || tx.Bucket([]byte("summary")) == nil {
			t.Error("the half-done migration keeps no progress, or deleted the summaries already")
		}
		if n := tx.Bucket([]byte("attempts")).Stats().KeyN; n == 0 || n == total {
			t.Errorf("after one step %d of %d attempts are apart; the test wants a half-done migration", n, total)
		}
		return nil
	})

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range old {
		got, err := st.Warning(want.ID)
		if err != nil || got == nil {
			t.Fatalf("warning %s: %v", want.ID, err)
		}
		if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("warning %s after the upgrade (-before +after):\n%s", want.ID, diff)
		}
	}
	chain := syncproto.UnitChain(old[0].Unit)
	list, err := st.List(store.ListQuery{Unit: chain[len(chain)-1], Sort: store.SortReceived, Limit: 1000, Now: time.Now()})
	if err != nil || len(list.Items) != len(old) {
		t.Fatalf("the list after the upgrade holds %d of %d warnings: %v", len(list.Items), len(old), err)
	}
	st.Close()
	rawView(t, dir, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("meta")).Get([]byte("migrate7_next")) != nil || tx.Bucket([]byte("summary")) != nil {
			t.Error("the migration's progress or the summaries are still there")
		}
		for id, r := range rawAttempts(t, tx) {
			if len(r.state.Attempts) > 0 {
				t.Errorf("warning %s: the state keeps %d attempts", id, len(r.state.Attempts))
			}
		}
		return nil
	})
	rep, err := storefile.Check(dir)
	if err != nil || len(rep.Problems) > 0 || rep.Attempts != total {
		t.Fatalf("check (%d attempts): %+v %v", total, rep, err)
	}
}

// TestCheck_AttemptsDisagree: the check finds a gap in a warning's
// attempts, attempts of no warning, and a state that holds attempts.
func TestCheck_AttemptsDisagree(t *testing.T) {
	dir, _ := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var gap, inState string
	rawView(t, dir, func(tx *bolt.Tx) error {
		for id, r := range rawAttempts(t, tx) {
			switch {
			case gap == "" && len(r.attempts) >= 2:
				gap = id
			case inState == "":
				inState = id
			}
		}
		return nil
	})
	if gap == "" || inState == "" {
		t.Fatal("the fixture has no warning with two attempts, or no other")
	}
	const orphan = "00000000-0000-4000-8000-00000000dead"
	attemptKey := func(id string, i uint32) []byte {
		return binary.BigEndian.AppendUint32(append([]byte(id), rawSep, 'a'), i)
	}
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		warnings := tx.Bucket([]byte("warnings"))
		first := attemptKey(gap, 0)
		v := bytes.Clone(warnings.Get(first))
		if v == nil {
			return fmt.Errorf("warning %s has no attempt 0 in the file", gap)
		}
		if err := warnings.Delete(first); err != nil {
			return err
		}
		if err := warnings.Put(attemptKey(orphan, 0), v); err != nil {
			return err
		}
		var w syncproto.Warning
		rawState(t, warnings.Get([]byte(inState)), &w)
		var a syncproto.Attempt
		if err := store.DecodeAttempt(v, &a); err != nil {
			return err
		}
		w.Attempts = []syncproto.Attempt{a}
		data, err := syncproto.MarshalMsgpack(&w)
		if err != nil {
			return err
		}
		return warnings.Put([]byte(inState), data)
	})
	found := map[string]bool{}
	for _, p := range rep.Problems {
		for _, want := range []string{"warning " + gap + " has attempt 1 where 0", "warning " + orphan + ", which", "warning " + inState + " holds 1 attempts"} {
			if strings.Contains(p, want) {
				found[want] = true
			}
		}
	}
	if len(found) != 3 {
		t.Fatalf("check found %d of the 3 problems: %v", len(found), rep.Problems)
	}
}

// TestCheck_AttemptUndecodable: the check reports an attempt record that
// decodes in neither form.
func TestCheck_AttemptUndecodable(t *testing.T) {
	dir, _ := copyV3(t)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var broken string
	rep := checkEdited(t, dir, func(tx *bolt.Tx) error {
		err := rawSubRecords(tx, 'a', func(id, rest, _ []byte) error {
			if broken == "" && binary.BigEndian.Uint32(rest) == 0 {
				broken = string(id)
			}
			return nil
		})
		if err != nil || broken == "" {
			return fmt.Errorf("no attempt to break in the fixture: %v", err)
		}
		// A compact value of more fields than an attempt has.
		return tx.Bucket([]byte("warnings")).Put(append([]byte(broken), rawSep, 'a', 0, 0, 0, 0), []byte{0xc1, 0x9f})
	})
	want := "warnings: warning " + broken + ": attempt 0: decode attempt"
	for _, p := range rep.Problems {
		if strings.HasPrefix(p, want) {
			return
		}
	}
	t.Fatalf("check did not report %q: %v", want, rep.Problems)
}
