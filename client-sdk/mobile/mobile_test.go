package mobile_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/mobile"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// env is a running server with the small city.
type env struct {
	srv *servertest.Server
	ids map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{})
	return &env{srv: srv, ids: srv.LoadCity(t)}
}

func testKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// client opens a facade client in a new folder, as an app would.
func (e *env) client(t *testing.T) *mobile.Client {
	t.Helper()
	return openClient(t, t.TempDir(), &mobile.Config{ServerURL: e.srv.URL, DeviceName: "test phone", Platform: "test", Key: testKey(t)})
}

func openClient(t *testing.T, dir string, cfg *mobile.Config) *mobile.Client {
	t.Helper()
	c, err := mobile.NewClient(dir, cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loggedIn opens a client for username and syncs it once.
func (e *env) loggedIn(t *testing.T, username string) *mobile.Client {
	t.Helper()
	c := e.client(t)
	if _, err := c.Login(username, servertest.CityPassword); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	mustSync(t, c)
	return c
}

func mustSync(t *testing.T, c *mobile.Client) *mobile.SyncReport {
	t.Helper()
	rep, err := c.Sync()
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// importWarnings imports rows as center1 and returns their ids by external id.
func (e *env) importWarnings(t *testing.T, rows ...syncproto.FeedWarning) map[string]string {
	t.Helper()
	return e.srv.Import(t, "center1", rows...)
}

func row(ext, unit string) syncproto.FeedWarning {
	return syncproto.FeedWarning{
		ExternalID: ext, Name: "测试" + ext, Phone: "13800001234", IDTail: "123X", Address: "某村某组" + ext,
		Unit: unit, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: time.Now().Add(-time.Hour),
	}
}

func mustCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := mobile.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	if !strings.HasPrefix(err.Error(), code+": ") {
		t.Fatalf("message %q does not start with %q", err.Error(), code+": ")
	}
}

// recorder is a Listener as an app implements it.
type recorder struct {
	mu       sync.Mutex
	changes  []string // "kind ids"
	progress []string // phases
}

func (r *recorder) OnChange(kind, ids string) {
	r.mu.Lock()
	r.changes = append(r.changes, kind+" "+ids)
	r.mu.Unlock()
}

func (r *recorder) OnProgress(phase string, pushed, toPush, pulled, remaining int) {
	r.mu.Lock()
	r.progress = append(r.progress, phase)
	r.mu.Unlock()
}

// waitFor waits until a change of kind naming id (or any, when id is "")
// has arrived.
func (r *recorder) waitFor(t *testing.T, kind, id string) {
	t.Helper()
	testwait.Until(t, fmt.Sprintf("a %s change for %q", kind, id), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.ContainsFunc(r.changes, func(c string) bool {
			k, ids, _ := strings.Cut(c, " ")
			return k == kind && (id == "" || slices.Contains(strings.Split(ids, ","), id))
		})
	})
}

func (r *recorder) waitProgress(t *testing.T, phase string) {
	t.Helper()
	testwait.Until(t, phase+" progress", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Contains(r.progress, phase)
	})
}

func jpeg(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.jpg")
	if err := os.WriteFile(path, append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 2000)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClient_Loop: the cadre logs in, syncs, lists, records offline with a
// photo, syncs; the lead reviews from another client; the cadre sees the
// warning closed, and the listener heard all of it.
func TestClient_Loop(t *testing.T) {
	e := newEnv(t)
	ids := e.importWarnings(t, row("L1", servertest.UnitVillA1), row("L2", servertest.UnitVillA1))

	cadre := e.client(t)
	rec := &recorder{}
	cadre.SetListener(rec)
	if cadre.CurrentUser() != nil {
		t.Fatal("a user before login")
	}
	_, err := cadre.Sync()
	mustCode(t, err, mobile.CodeNotLoggedIn)
	_, err = cadre.Login("a1", "wrong password")
	mustCode(t, err, mobile.CodeUnauthorized)

	u, err := cadre.Login("a1", servertest.CityPassword)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "a1" || u.Role != syncproto.RoleVillage || u.Unit != servertest.UnitVillA1 || u.ID != e.ids["a1"] {
		t.Fatalf("user = %+v", u)
	}
	rec.waitFor(t, mobile.ChangeAuth, "")
	if cu := cadre.CurrentUser(); cu == nil || cu.Username != "a1" {
		t.Fatalf("current user %+v", cu)
	}
	rep := mustSync(t, cadre)
	if rep.Pulled < 2 {
		t.Fatalf("first sync %+v", rep)
	}
	rec.waitFor(t, mobile.ChangeWarnings, ids["L1"])
	rec.waitProgress(t, "pull")
	rec.waitFor(t, mobile.ChangeSync, "")

	t.Run("List", func(t *testing.T) {
		all := cadre.Warnings(nil)
		if all.Len() != 2 || all.Get(-1) != nil || all.Get(2) != nil {
			t.Fatalf("%d warnings", all.Len())
		}
		w := all.Get(0)
		if w.ID == "" || w.Status != syncproto.WarningAssigned || w.Assignee != e.ids["a1"] || w.AssigneeName != "刘村一" ||
			w.Deadline == 0 || w.WarnedAt == 0 || w.Version == 0 || w.SyncState != "synced" || w.Risk != "high" {
			t.Fatalf("warning %+v", w)
		}
		if n := cadre.Warnings(&mobile.Filter{Status: " assigned , in_progress"}).Len(); n != 2 {
			t.Fatalf("status filter: %d", n)
		}
		if n := cadre.Warnings(&mobile.Filter{Status: "closed"}).Len(); n != 0 {
			t.Fatalf("closed: %d", n)
		}
		if l := cadre.Warnings(&mobile.Filter{Text: "组L2"}); l.Len() != 1 || l.Get(0).ID != ids["L2"] {
			t.Fatalf("text filter: %d", l.Len())
		}
		over, notOver := cadre.Warnings(&mobile.Filter{Overdue: 1}).Len(), cadre.Warnings(&mobile.Filter{Overdue: -1}).Len()
		if over+notOver != 2 {
			t.Fatalf("overdue %d + not %d", over, notOver)
		}
		if n := cadre.Warnings(&mobile.Filter{PendingOnly: true}).Len(); n != 0 {
			t.Fatalf("pending: %d", n)
		}
	})

	// Offline: the record is stored and shown at once.
	a := &mobile.AttemptInput{Method: "visit", Outcome: "dissuaded", Reached: true, Notes: "上门劝阻",
		HasLocation: true, Lat: 34.03, Lng: 113.85, Accuracy: 12}
	a.AddPhoto(jpeg(t))
	op, err := cadre.RecordAttempt(ids["L1"], a)
	if err != nil {
		t.Fatal(err)
	}
	if op.State != "pending" || op.Type != syncproto.OpRecorded || op.WarningID != ids["L1"] || op.ClientSeq != 1 || op.At == 0 {
		t.Fatalf("op %+v", op)
	}
	rec.waitFor(t, mobile.ChangeOps, op.OpID)
	w, err := cadre.Warning(ids["L1"])
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != syncproto.WarningResolved || w.AttemptCount() != 1 || w.OpCount() != 1 || w.Op(0).State != "pending" ||
		w.SyncState != "pending" || w.PendingOps != 1 {
		t.Fatalf("offline view: %+v", w)
	}
	at := w.Attempt(0)
	if at.Notes != "上门劝阻" || !at.Reached || !at.HasLocation || at.Lat != 34.03 || at.PhotoCount() != 1 || len(at.Photo(0)) != 64 || at.Photo(1) != "" {
		t.Fatalf("attempt %+v", at)
	}
	if st := cadre.Status(); st.Pending != 1 || !st.LoggedIn || st.Username != "a1" || st.DeviceID == "" {
		t.Fatalf("status %+v", st)
	}
	if n := cadre.Warnings(&mobile.Filter{PendingOnly: true}).Len(); n != 1 {
		t.Fatalf("pending filter: %d", n)
	}

	rep = mustSync(t, cadre)
	if rep.Pushed != 1 || rep.Applied != 1 || rep.Photos != 1 {
		t.Fatalf("sync report %+v", rep)
	}
	rec.waitProgress(t, "push")
	w, _ = cadre.Warning(ids["L1"])
	if w.SyncState != "synced" || w.PendingOps != 0 || w.MissingPhotoCount() != 0 || w.Attempt(0).ReceivedAt == 0 {
		t.Fatalf("after sync: %+v %+v", w, w.Attempt(0))
	}
	if st := cadre.Status(); st.Pending != 0 || st.LastSync == 0 || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}

	// The lead, on another client, sees the work and approves it.
	lead := e.loggedIn(t, "leadA")
	lw, err := lead.Warning(ids["L1"])
	if err != nil {
		t.Fatal(err)
	}
	if lw.Status != syncproto.WarningResolved || lw.UnitName != "长青社区" || lw.Attempt(0).ByName != "刘村一" {
		t.Fatalf("lead sees %+v", lw)
	}
	if _, err := lead.Review(ids["L1"], syncproto.DecisionApprove, "属实"); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, lead); rep.Applied != 1 || lead.Rejected().Len() != 0 {
		t.Fatalf("lead sync %+v", rep)
	}
	mustSync(t, cadre)
	w, _ = cadre.Warning(ids["L1"])
	if w.Status != syncproto.WarningClosed || w.ReviewCount() != 1 || w.Review(0).Decision != "approve" || w.Review(0).Comment != "属实" || w.ClosedAt == 0 {
		t.Fatalf("cadre after review: %+v", w)
	}

	t.Run("Rejected", func(t *testing.T) {
		op, err := cadre.Review(ids["L2"], syncproto.DecisionApprove, "")
		if err != nil {
			t.Fatal(err)
		}
		if rep := mustSync(t, cadre); rep.Rejected != 1 {
			t.Fatalf("report %+v", rep)
		}
		rej := cadre.Rejected()
		if rej.Len() != 1 || rej.Get(0).OpID != op.OpID || rej.Get(0).Code != mobile.CodeForbidden || rej.Get(0).Message == "" {
			t.Fatalf("rejected %d %+v", rej.Len(), rej.Get(0))
		}
		w, _ := cadre.Warning(ids["L2"])
		if w.SyncState != "rejected" || w.RejectedOps != 1 || w.Op(0).State != "rejected" {
			t.Fatalf("warning with a rejected op: %+v", w)
		}
		if st := cadre.Status(); st.Rejected != 1 {
			t.Fatalf("status %+v", st)
		}
		if err := cadre.Dismiss(op.OpID); err != nil {
			t.Fatal(err)
		}
		mustCode(t, cadre.Dismiss(op.OpID), mobile.CodeNotFound)
		if cadre.Rejected().Len() != 0 || cadre.Ops().Len() != 0 {
			t.Fatal("rejected op still listed")
		}
	})

	_, err = cadre.Warning("0190e000-0000-7000-8000-000000000000")
	mustCode(t, err, mobile.CodeNotFound)
	if err := cadre.Logout(); err != nil {
		t.Fatal(err)
	}
	if cadre.CurrentUser() != nil || cadre.Status().LoggedIn {
		t.Fatal("still logged in")
	}
	_, err = cadre.Sync()
	mustCode(t, err, mobile.CodeNotLoggedIn)
}

// TestClient_LeadWrites: dispatch, assign by username and escalate, with
// the directory pickers.
func TestClient_LeadWrites(t *testing.T) {
	e := newEnv(t)
	ids := e.importWarnings(t, row("T1", servertest.UnitTownA))
	lead := e.loggedIn(t, "leadA")

	units := lead.Units()
	var codes []string
	for i := 0; i < units.Len(); i++ {
		codes = append(codes, units.Get(i).Code)
	}
	if !slices.Contains(codes, servertest.UnitVillA2) {
		t.Fatalf("units %v", codes)
	}
	cadres := lead.Cadres()
	var names []string
	for i := 0; i < cadres.Len(); i++ {
		names = append(names, cadres.Get(i).Username)
	}
	if !slices.Contains(names, "a2x") || slices.Contains(names, "b1") {
		t.Fatalf("cadres %v", names)
	}

	if _, err := lead.Dispatch(ids["T1"], servertest.UnitVillA2); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Assign(ids["T1"], "a2x"); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Escalate(ids["T1"], "需要民警协助"); err != nil {
		t.Fatal(err)
	}
	if ops := lead.Ops(); ops.Len() != 3 || ops.Get(2).Type != syncproto.OpEscalated {
		t.Fatalf("ops %d", ops.Len())
	}
	if rep := mustSync(t, lead); rep.Applied != 3 {
		t.Fatalf("report %+v, rejected %+v", rep, lead.Rejected().Get(0))
	}
	w, _ := lead.Warning(ids["T1"])
	if w.Status != syncproto.WarningAssigned || w.Unit != servertest.UnitVillA2 || w.Assignee != e.ids["a2x"] ||
		w.AssigneeName != "陈村二" || !w.Escalated || w.DispatchedAt == 0 || w.AssignedAt == 0 {
		t.Fatalf("warning %+v", w)
	}
	a2x := e.loggedIn(t, "a2x")
	if l := a2x.Warnings(nil); l.Len() != 1 || l.Get(0).ID != ids["T1"] {
		t.Fatalf("a2x holds %d", l.Len())
	}
	_, err := a2x.RecordAttempt(ids["T1"], &mobile.AttemptInput{Method: "telepathy", Outcome: "dissuaded"})
	mustCode(t, err, mobile.CodeInvalidRequest)
	_, err = a2x.RecordAttempt(ids["T1"], nil)
	mustCode(t, err, mobile.CodeInvalidRequest)
}

// TestClient_BackgroundSync: a write made while background sync runs is
// sent soon, and the listener hears the sync.
func TestClient_BackgroundSync(t *testing.T) {
	e := newEnv(t)
	ids := e.importWarnings(t, row("B1", servertest.UnitVillA1))
	c := e.loggedIn(t, "a1")
	rec := &recorder{}
	c.SetListener(rec)
	c.StartBackgroundSync(3600)
	if !c.Status().BackgroundSync {
		t.Fatal("background sync not shown")
	}
	if _, err := c.RecordAttempt(ids["B1"], &mobile.AttemptInput{Method: "phone", Outcome: "refused", Reached: true}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a background sync of the pending op", func() bool { return c.Status().Pending == 0 })
	rec.waitFor(t, mobile.ChangeSync, "")
	c.StopBackgroundSync()
	if c.Status().BackgroundSync {
		t.Fatal("background sync still shown")
	}
	c.SetListener(nil)
}

// TestClient_Errors: codes for bad configs, keys, networks and closed
// clients, and the helpers working on messages only, as Java hands them
// back.
func TestClient_Errors(t *testing.T) {
	_, err := mobile.NewClient(t.TempDir(), nil)
	mustCode(t, err, mobile.CodeInvalidRequest)
	_, err = mobile.NewClient(t.TempDir(), &mobile.Config{ServerURL: "http://127.0.0.1:1", Key: []byte("short")})
	mustCode(t, err, mobile.CodeInvalidRequest)
	_, err = mobile.NewClient(t.TempDir(), &mobile.Config{ServerURL: "http://127.0.0.1:1", Key: testKey(t), StallTimeoutSeconds: -1})
	mustCode(t, err, mobile.CodeInvalidRequest)

	dir := t.TempDir()
	c, err := mobile.NewClient(dir, &mobile.Config{ServerURL: "http://127.0.0.1:1", Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Login("a1", "x")
	mustCode(t, err, mobile.CodeNetwork)
	if !mobile.Retryable(err) || mobile.Retryable(errors.New("forbidden: no")) {
		t.Fatal("retryable")
	}
	_, err = c.RecordAttempt("w", &mobile.AttemptInput{Method: "visit", Outcome: "dissuaded"})
	mustCode(t, err, mobile.CodeNotLoggedIn)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err = c.Sync()
	mustCode(t, err, mobile.CodeClosed)
	_, err = c.Review("w", "approve", "")
	mustCode(t, err, mobile.CodeClosed)
	mustCode(t, c.Dismiss("x"), mobile.CodeClosed)

	_, err = mobile.NewClient(dir, &mobile.Config{ServerURL: "http://127.0.0.1:1", Key: testKey(t)})
	mustCode(t, err, mobile.CodeWrongKey)

	// Only the message crosses the binding.
	for msg, code := range map[string]string{
		"forbidden: not in your scope": mobile.CodeForbidden,
		"not_logged_in: not logged in": mobile.CodeNotLoggedIn,
		"boom":                         mobile.CodeInternal,
		"Read: no such file":           mobile.CodeInternal,
	} {
		if got := mobile.ErrorCode(errors.New(msg)); got != code {
			t.Errorf("ErrorCode(%q) = %q, want %q", msg, got, code)
		}
	}
	if got := mobile.ErrorMessage(errors.New("forbidden: not in your scope")); got != "not in your scope" {
		t.Errorf("ErrorMessage = %q", got)
	}
	if got := mobile.ErrorMessage(errors.New("boom")); got != "boom" {
		t.Errorf("ErrorMessage = %q", got)
	}
	if mobile.ErrorCode(nil) != "" || mobile.ErrorMessage(nil) != "" {
		t.Error("nil error")
	}
}

// TestClient_CloseCancels: Close ends a call blocked on the network.
func TestClient_CloseCancels(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // only then does the server see the client leave
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	c, err := mobile.NewClient(t.TempDir(), &mobile.Config{ServerURL: hang.URL, Key: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Login("a1", "x")
		done <- err
	}()
	<-arrived
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		mustCode(t, err, mobile.CodeClosed)
	case <-time.After(time.Until(testwait.Deadline(t))):
		t.Fatal("login still blocked after Close")
	}
}

// TestClient_StallTimeoutSetting: a server that takes the request and
// never answers is given up after Config.StallTimeoutSeconds, as a network
// failure, long before the call's own time limit would end it.
func TestClient_StallTimeoutSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request and say nothing: a link gone silent.
			go func() { _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	c, err := mobile.NewClient(t.TempDir(), &mobile.Config{
		ServerURL: "http://" + ln.Addr().String(), Key: testKey(t), StallTimeoutSeconds: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login("a1", "whatever")
	mustCode(t, err, mobile.CodeNetwork)
}

// TestClient_TooManyDevices: a sign-in past the server's cap on devices
// per user comes back with its own code and the server's sentence, which
// the app shows as it is, and leaves the phone signed out.
func TestClient_TooManyDevices(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{MaxDevicesPerUser: 1})
	srv.LoadCity(t)
	e := &env{srv: srv}
	e.loggedIn(t, "a1")
	second := e.client(t)
	_, err := second.Login("a1", servertest.CityPassword)
	mustCode(t, err, mobile.CodeTooManyDevices)
	if mobile.Retryable(err) {
		t.Error("too_many_devices is retryable")
	}
	want := "this account is already signed in on as many devices as allowed (1); sign out on a device you no longer use, or ask an administrator to revoke it, then sign in again"
	if got := mobile.ErrorMessage(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if second.CurrentUser() != nil {
		t.Error("the refused phone is signed in")
	}
}
