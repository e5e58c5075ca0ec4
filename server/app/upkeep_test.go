package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/store"
)

// retentionRound runs RunRetention until it has asked Leads once, with
// Leads answering leads, and returns how many groups the store applied
// meanwhile.
func retentionRound(t *testing.T, leads bool) uint64 {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Create: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	asked := make(chan struct{})
	a, err := app.New(context.Background(), st, app.Config{Leads: func() bool {
		asked <- struct{}{}
		return leads
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := st.AppliedIndex()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunRetention(ctx, time.Hour)
	}()
	<-asked
	if leads {
		// The sweep follows the answer: one retention step at least.
		testwait.Until(t, "the leader's retention sweep", func() bool { return st.AppliedIndex() > before })
	}
	cancel()
	<-done
	return st.AppliedIndex() - before
}

// On a cluster the retention sweep runs on the leader only: a follower
// writes nothing (its sweep would go through the log as well, for
// nothing); the leader sweeps.
func TestRunRetention_LeaderOnly(t *testing.T) {
	if n := retentionRound(t, false); n != 0 {
		t.Fatalf("a follower's retention applied %d groups, want none", n)
	}
	if n := retentionRound(t, true); n == 0 {
		t.Fatal("the leader's retention applied nothing")
	}
}
