package mobile_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/mobile"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestRejected_WarningFull: an attempt the server refuses for the
// warning's size is listed in Rejected with CodeWarningFull and the
// server's sentence, for the app to show the cadre.
func TestRejected_WarningFull(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{WarningLimits: syncproto.WarningLimits{MaxAttempts: 1}})
	e := &env{srv: srv, ids: srv.LoadCity(t)}
	ids := e.importWarnings(t, row("F1", servertest.UnitVillA1))
	cadre := e.loggedIn(t, "a1")
	var last *mobile.OpStatus
	for range 2 {
		op, err := cadre.RecordAttempt(ids["F1"], &mobile.AttemptInput{Method: "phone", Outcome: "unreachable", Notes: "无人接听"})
		if err != nil {
			t.Fatal(err)
		}
		last = op
	}
	if rep := mustSync(t, cadre); rep.Applied != 1 || rep.Rejected != 1 {
		t.Fatalf("report %+v", rep)
	}
	rej := cadre.Rejected()
	if rej.Len() != 1 || rej.Get(0).OpID != last.OpID || rej.Get(0).Code != mobile.CodeWarningFull || rej.Get(0).Message == "" {
		t.Fatalf("rejected %d %+v", rej.Len(), rej.Get(0))
	}
	if w, _ := cadre.Warning(ids["F1"]); w.AttemptCount() != 1 || w.RejectedOps != 1 {
		t.Fatalf("warning %+v", w)
	}
}
