package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
)

func TestTouchDevices(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	d := srv.Login(t, "a1", servertest.CityPassword)
	st := srv.Store
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	if err := st.TouchDevices(ctx, map[string]time.Time{d.ID: at, "00000000-0000-4000-8000-000000000000": at}); err != nil {
		t.Fatal(err)
	}
	if dev, _, _ := st.Device(d.ID); !dev.LastSeen.Equal(at) {
		t.Fatalf("LastSeen %v, want %v", dev.LastSeen, at)
	}
	if _, ok, err := st.Device("00000000-0000-4000-8000-000000000000"); ok || err != nil {
		t.Fatalf("an unknown device was created (%v)", err)
	}
	// An older sighting (a flush that lost a race with a push) never moves
	// LastSeen back.
	if err := st.TouchDevices(ctx, map[string]time.Time{d.ID: at.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if dev, _, _ := st.Device(d.ID); !dev.LastSeen.Equal(at) {
		t.Fatalf("LastSeen moved back to %v", dev.LastSeen)
	}
}
