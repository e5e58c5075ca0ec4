package mobile_test

import (
	"net/http/httptest"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/mobile"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestClient_SeveralServerAddresses: an app given a cluster's addresses in
// Config.ServerURL, comma-separated, signs in and syncs while the first
// refuses connections (its node is down), through the next; a list with
// something that is not an address is refused at once.
func TestClient_SeveralServerAddresses(t *testing.T) {
	e := newEnv(t)
	ids := e.importWarnings(t, row("S1", servertest.UnitVillA1))
	down := httptest.NewServer(nil)
	down.Close()
	c := openClient(t, t.TempDir(), &mobile.Config{
		ServerURL: down.URL + ", " + e.srv.URL + "/", DeviceName: "test phone", Platform: "test", Key: testKey(t),
	})
	if _, err := c.Login("a1", servertest.CityPassword); err != nil {
		t.Fatalf("login past a node that is down: %v", err)
	}
	a := &mobile.AttemptInput{Method: "visit", Outcome: "dissuaded", Reached: true}
	if _, err := c.RecordAttempt(ids["S1"], a); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, c); rep.Applied != 1 {
		t.Fatalf("sync %+v, want the attempt applied", rep)
	}
	if c.Server() != e.srv.URL {
		t.Fatalf("the client is at %s, want the address that answered, %s", c.Server(), e.srv.URL)
	}

	_, err := mobile.NewClient(t.TempDir(), &mobile.Config{ServerURL: e.srv.URL + ", fieldsync.example", Key: testKey(t)})
	mustCode(t, err, mobile.CodeInvalidRequest)
}
