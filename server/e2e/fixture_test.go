package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The test city is servertest's small city.
const (
	unitCity     = servertest.UnitCity
	unitCounty   = servertest.UnitCounty
	unitTownA    = servertest.UnitTownA
	unitVillA1   = servertest.UnitVillA1
	unitVillA2   = servertest.UnitVillA2
	unitTownB    = servertest.UnitTownB
	unitVillB1   = servertest.UnitVillB1
	testPassword = servertest.CityPassword
)

// city is a running server holding the fixture, with a logged-in device per
// user.
type city struct {
	srv     *servertest.Server
	admin   *servertest.Device
	dev     map[string]*servertest.Device
	userIDs map[string]string
}

func newCity(t *testing.T, codec syncproto.Codec, now func() time.Time) *city {
	t.Helper()
	return newCityWith(t, servertest.Options{Codec: codec, Now: now})
}

// newCityWith is newCity on a server started with opts.
func newCityWith(t *testing.T, opts servertest.Options) *city {
	t.Helper()
	srv := servertest.Start(t, opts)
	c := &city{srv: srv, admin: srv.Admin(t), dev: map[string]*servertest.Device{}}
	c.userIDs = srv.LoadCity(t)
	for _, u := range servertest.CityUsers {
		c.dev[u.Username] = srv.Login(t, u.Username, testPassword)
	}
	return c
}

// pullAll pulls pages until more is false and returns the last state of each
// record by entity/id (a remove deletes it), and the final response.
func pullAll(t *testing.T, d *servertest.Device, cursor string, limit int) (map[string]syncproto.Change, *syncproto.PullResponse) {
	t.Helper()
	got := map[string]syncproto.Change{}
	for range 1000 {
		resp, err := d.Pull(context.Background(), syncproto.PullRequest{DeviceID: d.ID, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if resp.Reset {
			clear(got)
		}
		for _, ch := range resp.Changes {
			key := ch.Entity + "/" + ch.ID
			if ch.Kind == syncproto.ChangeRemove {
				delete(got, key)
			} else {
				got[key] = ch
			}
		}
		cursor = resp.Cursor
		if !resp.More {
			if resp.Remaining != 0 {
				t.Fatalf("remaining = %d with more false", resp.Remaining)
			}
			return got, resp
		}
	}
	t.Fatal("pull never finished")
	return nil, nil
}

func warningOf(t *testing.T, changes map[string]syncproto.Change, id string) *syncproto.Warning {
	t.Helper()
	ch, ok := changes["warning/"+id]
	if !ok {
		t.Fatalf("warning %s not pulled", id)
	}
	w, ok := ch.Data.(*syncproto.Warning)
	if !ok {
		t.Fatalf("warning %s: data is %T", id, ch.Data)
	}
	return w
}

func warningIDs(changes map[string]syncproto.Change) map[string]bool {
	ids := map[string]bool{}
	for _, ch := range changes {
		if ch.Entity == syncproto.EntityWarning {
			ids[ch.ID] = true
		}
	}
	return ids
}

// op builds an op for d with its next client_seq.
func op(d *servertest.Device, typ, warningID string, base uint64, body syncproto.OpBody) syncproto.Op {
	return syncproto.Op{
		ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: d.NextSeq(), Type: typ, WarningID: warningID,
		BaseVersion: base, At: time.Now().UTC(), Body: body,
	}
}

func recordBody(outcome string, reached bool) syncproto.OpBody {
	return syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodVisit, Reached: &reached, Outcome: outcome, Notes: "上门劝阻"}
}

// push sends ops and fails the test on a transport or protocol error.
func push(t *testing.T, d *servertest.Device, ops ...syncproto.Op) *syncproto.PushResponse {
	t.Helper()
	resp, err := d.Push(context.Background(), syncproto.PushRequest{DeviceID: d.ID, Ops: ops})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if len(resp.Results) != len(ops) {
		t.Fatalf("push: %d results for %d ops", len(resp.Results), len(ops))
	}
	return resp
}

func mustApplied(t *testing.T, r syncproto.Result) {
	t.Helper()
	if r.Status != syncproto.StatusApplied {
		t.Fatalf("op %d: status %s code %s: %s", r.ClientSeq, r.Status, r.Code, r.Message)
	}
}

func errCode(err error) string {
	var pe *syncproto.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return fmt.Sprintf("not a protocol error: %v", err)
}

func hasFlag(w *syncproto.Warning, code string) bool {
	for _, f := range w.Flags {
		if f.Code == code {
			return true
		}
	}
	return false
}
