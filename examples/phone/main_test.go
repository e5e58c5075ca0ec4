package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// city is a server with the small city and three warnings: W1 and W2 at
// village A1 (so assigned to a1), T1 at township A.
type city struct {
	srv *servertest.Server
	ids map[string]string
}

func newCity(t *testing.T) *city {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	warned := time.Now().Add(-time.Hour)
	ids := srv.Import(t, "center1",
		servertest.FeedRow("W1", servertest.UnitVillA1, syncproto.RiskHigh, warned),
		servertest.FeedRow("W2", servertest.UnitVillA1, syncproto.RiskHigh, warned),
		servertest.FeedRow("T1", servertest.UnitTownA, syncproto.RiskHigh, warned))
	return &city{srv: srv, ids: ids}
}

// phoneRun runs the program on dir against the city's server.
func (c *city) phoneRun(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"-server", c.srv.URL, "-dir", dir}, args...), &out, &errOut)
	return out.String(), err
}

func (c *city) must(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := c.phoneRun(t, dir, args...)
	if err != nil {
		t.Fatalf("phone %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: no %q in:\n%s", what, w, out)
		}
	}
}

// lineWith is the first line of out holding s.
func lineWith(t *testing.T, out, s string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	t.Fatalf("no line with %q in:\n%s", s, out)
	return ""
}

// TestPhone: a cadre logs in, syncs, lists, records with no signal (sync
// refused), gets signal back and syncs; the lead reviews, dispatches,
// assigns and escalates from another phone; a rejected op is read and
// dismissed.
func TestPhone(t *testing.T) {
	c := newCity(t)
	cadre, lead := t.TempDir(), t.TempDir()

	out := c.must(t, cadre, "-password", servertest.CityPassword, "login", "a1")
	contains(t, "login", out, "logged in as 刘村一 (a1)")
	out = c.must(t, cadre, "sync")
	contains(t, "sync", out, "pull 2/2\n", "synced: sent 0 ops", "pulled 2 changes")
	if strings.Contains(out, "\r") {
		t.Errorf("sync to a file redraws its progress in place: %q", out)
	}

	out = c.must(t, cadre, "list")
	contains(t, "list", out, "ID", "DEADLINE", "2 warnings")
	row := lineWith(t, out, "测试W1")
	short := strings.Fields(row)[0]
	if !strings.HasPrefix(c.ids["W1"], short) || len(short) < 8 || len(short) >= len(c.ids["W1"]) {
		t.Fatalf("short id %q of %s", short, c.ids["W1"])
	}
	contains(t, "list row", row, "assigned", "high", "synced")
	contains(t, "filtered", c.must(t, cadre, "list", "-status", "resolved,closed"), "0 warnings")
	contains(t, "text", c.must(t, cadre, "list", "-text", "组W2"), "测试W2", "1 warnings")

	// No signal: the record is kept, sync refuses to touch the network.
	photo := filepath.Join(t.TempDir(), "p.jpg")
	if err := os.WriteFile(photo, append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 1000)...), 0o600); err != nil {
		t.Fatal(err)
	}
	contains(t, "offline on", c.must(t, cadre, "offline", "on"), "offline: on")
	out = c.must(t, cadre, "record", short, "-method", "visit", "-outcome", "dissuaded", "-reached", "-notes", "上门劝阻，已讲清骗局", "-photo", photo)
	contains(t, "record", out, "dissuasion.recorded", "(pending)")
	contains(t, "list pending", lineWith(t, c.must(t, cadre, "list", "-pending"), "测试W1"), "resolved", "1 pending")
	_, err := c.phoneRun(t, cadre, "sync")
	if !errors.Is(err, errOffline) || !strings.Contains(err.Error(), "offline mode is on") {
		t.Fatalf("sync while offline: %v", err)
	}
	if _, err := c.phoneRun(t, cadre, "login", "a1"); !errors.Is(err, errOffline) {
		t.Fatalf("login while offline: %v", err)
	}
	contains(t, "status offline", c.must(t, cadre, "status"), "on (sync refused)", "1 ops not yet confirmed", "刘村一 (a1)")

	// The lead sees nothing of it yet: nothing left the phone.
	c.must(t, lead, "-password", servertest.CityPassword, "login", "leadA")
	c.must(t, lead, "sync")
	contains(t, "lead before", c.must(t, lead, "show", c.ids["W1"]), "assigned", "attempts (0)")

	contains(t, "offline off", c.must(t, cadre, "offline", "off"), "offline: off")
	out = c.must(t, cadre, "sync")
	contains(t, "sync", out, "push 1/1\n", "sent 1 ops (1 applied, 0 rejected), 1 photos")
	out = c.must(t, cadre, "show", short)
	contains(t, "show", out, "warning "+c.ids["W1"], "resolved", "测试W1", "13800001234", "刷单返利",
		"visit, reached, dissuaded  by 刘村一 (a1, you)", "notes: 上门劝阻，已讲清骗局", "photos: 1 (0 not on the server yet)",
		"reviews (0)", "flags (0, 0 open)", "ops on this phone (0): synced")

	// The lead reviews, and moves T1 down to a cadre.
	c.must(t, lead, "sync")
	out = c.must(t, lead, "show", c.ids["W1"])
	contains(t, "lead show", out, "resolved", "by 刘村一 (a1)", "411002001001 长青社区")
	contains(t, "review", c.must(t, lead, "review", c.ids["W1"], "approve", "-comment", "属实"), "warning.reviewed")
	contains(t, "dispatch", c.must(t, lead, "dispatch", c.ids["T1"], "团结"), "warning.dispatched")
	contains(t, "assign", c.must(t, lead, "assign", c.ids["T1"], "a2x"), "warning.assigned")
	contains(t, "escalate", c.must(t, lead, "escalate", c.ids["T1"][:20], "-reason", "需要民警上门"), "warning.escalated")
	if _, err := c.phoneRun(t, lead, "assign", c.ids["T1"], "nobody"); err == nil {
		t.Fatal("assigned to an unknown cadre")
	}
	contains(t, "lead pending", lineWith(t, c.must(t, lead, "list"), "测试T1"), "3 pending")
	contains(t, "lead sync", c.must(t, lead, "sync"), "sent 4 ops (4 applied, 0 rejected)")
	out = c.must(t, lead, "show", c.ids["T1"])
	contains(t, "T1", out, "assigned", "陈村二 (a2x)", "411002001002 团结社区", "escalated      yes")
	contains(t, "directory", c.must(t, lead, "directory"), "411002001002", "a2x")

	// The cadre sees it closed; a review the cadre may not make is
	// rejected, read and dismissed.
	c.must(t, cadre, "sync")
	contains(t, "closed", c.must(t, cadre, "show", short), "closed", "approve by", ": 属实")
	c.must(t, cadre, "review", c.ids["W2"], "approve")
	contains(t, "rejected sync", c.must(t, cadre, "sync"), "1 rejected", "1 ops were rejected")
	out = c.must(t, cadre, "rejected")
	row = lineWith(t, out, "forbidden")
	contains(t, "rejected row", row, "warning.reviewed")
	contains(t, "show rejected", c.must(t, cadre, "show", c.ids["W2"]), "ops on this phone (1): 1 rejected", "forbidden: ")
	contains(t, "dismiss", c.must(t, cadre, "dismiss", strings.Fields(row)[0]), "dismissed op")
	contains(t, "none rejected", c.must(t, cadre, "rejected"), "no rejected ops")

	contains(t, "status", c.must(t, cadre, "status"), "logged in", "off", "0 ops not yet confirmed", "2 on the phone")
	contains(t, "logout", c.must(t, cadre, "logout"), "logged out")
	if _, err := c.phoneRun(t, cadre, "sync"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("sync after logout: %v", err)
	}
}

// TestPhone_Args: prefixes, prompts, usage.
func TestPhone_Args(t *testing.T) {
	c := newCity(t)
	dir := t.TempDir()

	stdin = strings.NewReader(servertest.CityPassword + "\n")
	t.Cleanup(func() { stdin = os.Stdin })
	contains(t, "prompted login", c.must(t, dir, "login", "a1"), "logged in as 刘村一")
	if _, err := c.phoneRun(t, dir, "-password", "wrong", "login", "a1"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("wrong password: %v", err)
	}
	c.must(t, dir, "sync")

	// Every UUIDv7 starts with "0": ambiguous.
	if _, err := c.phoneRun(t, dir, "show", "0"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("show 0: %v", err)
	}
	if _, err := c.phoneRun(t, dir, "show", "ffff"); err == nil || !strings.Contains(err.Error(), "no warning") {
		t.Fatalf("show ffff: %v", err)
	}
	if _, err := c.phoneRun(t, dir, "record", c.ids["W1"], "-method", "telepathy", "-outcome", "dissuaded"); err == nil {
		t.Fatal("recorded a bad method")
	}
	if _, err := c.phoneRun(t, dir, "review", c.ids["W1"]); err == nil {
		t.Fatal("review without a decision")
	}
	if _, err := c.phoneRun(t, dir, "offline", "maybe"); err == nil {
		t.Fatal("offline maybe")
	}
	if _, err := c.phoneRun(t, dir); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("no command: %v", err)
	}
	if _, err := c.phoneRun(t, dir, "fly"); err == nil {
		t.Fatal("unknown command ran")
	}
	// The server is remembered from the login.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-dir", dir, "status"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	contains(t, "status", out.String(), c.srv.URL)
}

func TestShortIDs(t *testing.T) {
	ids := []string{
		"0199c3a0-1111-7000-8000-000000000001",
		"0199c3a0-1111-7000-8000-000000000002",
		"0199d000-0000-7000-8000-000000000000",
	}
	s := shortIDs(ids)
	if s[ids[0]] != ids[0] || s[ids[1]] != ids[1] || s[ids[2]] != "0199d000" {
		t.Fatalf("short ids %v", s)
	}
	if got, err := resolve("warning", "0199D", ids); err != nil || got != ids[2] {
		t.Fatalf("resolve: %s %v", got, err)
	}
}

// TestClock_BeijingTime: the phone shows the console's time, Beijing,
// whatever the machine's zone: 18:56 UTC is 02:56 the next day.
func TestClock_BeijingTime(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 56, 0, 0, time.UTC)
	if got := clock(at.In(time.FixedZone("PST", -8*3600))); got != "2026-12-06 02:56" {
		t.Fatalf("clock = %q, want 2026-12-06 02:56", got)
	}
}
