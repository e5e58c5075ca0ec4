package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// TestPhone_SeveralServers: -server takes a cluster's addresses,
// comma-separated; with the first down the phone signs in and syncs
// through the next, and status names the one in use.
func TestPhone_SeveralServers(t *testing.T) {
	c := newCity(t)
	down := httptest.NewServer(nil)
	down.Close()
	dir := t.TempDir()
	servers := down.URL + "," + c.srv.URL
	phone := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"-server", servers, "-dir", dir}, args...), &out, &errOut); err != nil {
			t.Fatalf("phone %q: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		return out.String()
	}
	contains(t, "login", phone("-password", servertest.CityPassword, "login", "a1"), "logged in as 刘村一 (a1)")
	contains(t, "sync", phone("sync"), "pulled 2 changes")
	contains(t, "status", phone("status"), servers+" (in use: "+c.srv.URL+")")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"-server", c.srv.URL + ",fieldsync.example", "-dir", t.TempDir(), "status"}, &out, &out); err == nil {
		t.Fatalf("a list with something that is not an address was taken:\n%s", out.String())
	}
}
