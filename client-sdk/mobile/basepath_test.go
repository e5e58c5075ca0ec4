package mobile_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/mobile"
	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestClient_ServerURLWithPath: an app given a city's address behind a
// province's proxy (a path after the host) signs in, pulls its warnings,
// and pushes an attempt with a photo, which the server then holds.
func TestClient_ServerURLWithPath(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{BasePath: "/4110"})
	e := &env{srv: srv, ids: srv.LoadCity(t)}
	ids := e.importWarnings(t, row("P1", servertest.UnitVillA1))
	c := e.loggedIn(t, "a1")
	if all := c.Warnings(nil); all.Len() != 1 {
		t.Fatalf("%d warnings pulled, want 1", all.Len())
	}
	a := &mobile.AttemptInput{Method: "visit", Outcome: "dissuaded", Reached: true}
	a.AddPhoto(jpeg(t))
	if _, err := c.RecordAttempt(ids["P1"], a); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, c); rep.Applied != 1 || rep.Photos != 1 {
		t.Fatalf("sync %+v, want the attempt applied and its photo sent", rep)
	}
}
