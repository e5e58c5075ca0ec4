package app_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// stallingWriter tells when the first byte arrives, then holds every write
// until released.
type stallingWriter struct {
	started chan struct{}
	release chan struct{}
	first   bool
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if !w.first {
		w.first = true
		close(w.started)
	}
	<-w.release
	return len(p), nil
}

// newApp is a service on a new empty store, closed with the test.
func newApp(t *testing.T) (*store.Store, *app.App) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := app.New(context.Background(), st, app.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, a
}

// TestBackup_OneAtATime: while one backup streams, a second is refused with
// rate_limited and a wait, and changes nothing; once the first ends,
// another goes ahead.
func TestBackup_OneAtATime(t *testing.T) {
	ctx := context.Background()
	_, a := newApp(t)
	root := app.Principal{Actor: syncproto.Actor{UserID: "u-admin", Role: syncproto.RoleCenter, Unit: "4110", DeviceID: "d-1"}, Admin: true}
	w := &stallingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := a.Backup(ctx, root, w)
		done <- err
	}()
	<-w.started
	_, err := a.Backup(ctx, root, io.Discard)
	var perr *syncproto.Error
	if !errors.As(err, &perr) || perr.Code != syncproto.CodeRateLimited || perr.Details["retry_after"] == nil {
		t.Fatalf("a second backup while one streams: %v, want rate_limited with retry_after", err)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("the first backup: %v", err)
	}
	if _, err := a.Backup(ctx, root, io.Discard); err != nil {
		t.Fatalf("a backup after the first ended: %v", err)
	}
	county := root
	county.Actor.Unit = "411002"
	if _, err := a.Backup(ctx, county, io.Discard); !errors.As(err, &perr) || perr.Code != syncproto.CodeForbidden {
		t.Fatalf("a county admin's backup: %v, want forbidden", err)
	}
}
