package clientsdk_test

// The world the SDK's tests share: the small test city of servertest on a
// real server whose clock a test moves, phones opened on it (plain, or on a
// network that fails on purpose), and the checks of what a phone holds
// against the server's own state.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ------------------------------------------------------------------ the city

// testClock is the server's clock, which a test moves.
type testClock interface {
	Now() time.Time
	Add(d time.Duration)
}

// city is a running server with the small test city (servertest.CityUnits
// and CityUsers) loaded.
type city struct {
	srv *servertest.Server
	// ids are the users' ids by username.
	ids   map[string]string
	clock testClock
	// fresh are the devices pullFresh signs in, one per user, kept
	// because signing in costs an argon2id hash.
	fresh map[string]*servertest.Device
}

// newCity starts a server on a clock that runs with the wall clock until
// the test moves it, and loads the city. The server closes when the test
// ends.
func newCity(t testing.TB) *city {
	t.Helper()
	return newCityWith(t, nil, servertest.Options{})
}

// newCityWith is newCity on clock (a fakeclock.Offset when nil), with the
// server's other options from opts.
func newCityWith(t testing.TB, clock testClock, opts servertest.Options) *city {
	t.Helper()
	if clock == nil {
		clock = &fakeclock.Offset{}
	}
	opts.Now = clock.Now
	srv := servertest.Start(t, opts)
	return &city{srv: srv, ids: srv.LoadCity(t), clock: clock}
}

// row is one warning of the daily feed, named after ext.
func row(ext, unit string) syncproto.FeedWarning {
	return syncproto.FeedWarning{
		ExternalID: ext, Name: "测试" + ext, Phone: "13800001234", IDTail: "123X", Address: "某村某组" + ext,
		Unit: unit, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
	}
}

// importWarnings imports rows as center1 and returns the new warnings' ids
// by external id.
func (ct *city) importWarnings(t testing.TB, rows ...syncproto.FeedWarning) map[string]string {
	t.Helper()
	return ct.srv.Import(t, "center1", rows...)
}

// importMany imports n warnings named prefix1, prefix2 ... spread over
// units in turn, and returns their ids in import order.
func (ct *city) importMany(t testing.TB, prefix string, n int, units ...string) []string {
	t.Helper()
	rows := make([]syncproto.FeedWarning, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("%s%d", prefix, i+1), units[i%len(units)])
		// A realistic address: sealed records of a few hundred bytes.
		rows[i].Address = fmt.Sprintf("西大街街道天宝路社区%d号楼%d单元%d室", i+1, i%6+1, 100+i)
	}
	byExt := ct.importWarnings(t, rows...)
	ids := make([]string, n)
	for i, r := range rows {
		ids[i] = byExt[r.ExternalID]
	}
	return ids
}

// moveUser moves username to unit through the admin API, keeping the rest.
func (ct *city) moveUser(t testing.TB, username, unit string) {
	t.Helper()
	i := slices.IndexFunc(servertest.CityUsers, func(u syncproto.UserInput) bool { return u.Username == username })
	u := servertest.CityUsers[i]
	u.Unit = unit
	if _, err := ct.srv.Admin(t).UpsertUsers(context.Background(), []syncproto.UserInput{u}); err != nil {
		t.Fatalf("move %s: %v", username, err)
	}
}

// op is an op on a warning at its version on the server, made now by the
// server's clock.
func (ct *city) op(t testing.TB, typ, warningID string, body syncproto.OpBody) syncproto.Op {
	t.Helper()
	return syncproto.Op{
		ID: uuid.Must(uuid.NewV7()).String(), Type: typ, WarningID: warningID,
		BaseVersion: ct.serverWarning(t, warningID).Version, At: ct.clock.Now().UTC(), Body: body,
	}
}

// applyAs pushes ops as username from a new device of its own, in one
// push, and fails unless the server applies every one.
func (ct *city) applyAs(t testing.TB, username string, ops ...syncproto.Op) {
	t.Helper()
	d := ct.srv.Login(t, username, servertest.CityPassword)
	for i := range ops {
		ops[i].ClientSeq = d.NextSeq()
	}
	resp, err := d.Push(context.Background(), syncproto.PushRequest{DeviceID: d.ID, Ops: ops})
	if err != nil || len(resp.Results) != len(ops) {
		t.Fatalf("push as %s: %+v %v", username, resp, err)
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("push as %s: %+v", username, r)
		}
	}
}

// serverWarning is a warning as the server's store holds it.
func (ct *city) serverWarning(t testing.TB, id string) *syncproto.Warning {
	t.Helper()
	w, err := ct.srv.Store.Warning(id)
	if err != nil || w == nil {
		t.Fatalf("warning %s on the server: %v", id, err)
	}
	return w
}

// backup takes a hot backup of the city's server, as its root admin.
func (ct *city) backup(t testing.TB) []byte {
	t.Helper()
	var tarball []byte
	if err := ct.srv.Admin(t).DoRaw(context.Background(), http.MethodGet, "/v1/admin/backup", "", nil, &tarball); err != nil {
		t.Fatalf("backup: %v", err)
	}
	return tarball
}

// restore stops the city's server, restores tarball into a new directory
// and serves it as the city's (serveFrom).
func (ct *city) restore(t testing.TB, tarball []byte, devs ...*device) *storefile.RestoreInfo {
	t.Helper()
	ct.stop(t)
	dir := filepath.Join(t.TempDir(), "restored")
	info, err := storefile.Restore(context.Background(), bytes.NewReader(tarball), dir, storefile.RestoreOptions{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	ct.serveFrom(t, dir, devs...)
	return info
}

// serveFrom starts a server on the store in dir as the city's, on the
// city's clock, and points the devices' networks at it, their histories
// emptied. The server closes when the test ends, or at stop.
func (ct *city) serveFrom(t testing.TB, dir string, devs ...*device) {
	t.Helper()
	ct.srv = servertest.Start(t, servertest.Options{Dir: dir, Now: ct.clock.Now})
	for _, d := range devs {
		if err := d.net.Retarget(ct.srv.URL); err != nil {
			t.Fatal(err)
		}
		d.net.ResetHistory()
	}
}

// stop closes the city's server, if it still runs.
func (ct *city) stop(t testing.TB) {
	t.Helper()
	if err := ct.srv.Close(); err != nil {
		t.Errorf("close server: %v", err)
	}
}

// ------------------------------------------------------------------- phones

func testKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// openPhone opens an SDK in dir with opts; it closes when the test ends.
func openPhone(t testing.TB, dir string, opts clientsdk.Options) *clientsdk.Client {
	t.Helper()
	c, err := clientsdk.Open(dir, opts)
	if err != nil {
		t.Fatalf("open sdk: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// phoneOptions are a test phone's on the city's server: fast retries, and
// requests over transport (the default one when nil).
func (ct *city) phoneOptions(key []byte, transport http.RoundTripper) clientsdk.Options {
	return clientsdk.Options{
		ServerURL: ct.srv.URL, DeviceName: "test phone", Platform: "test", Key: key,
		HTTPClient: &http.Client{Transport: transport, Timeout: 10 * time.Second},
		Retry:      clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 8},
	}
}

// phone opens an SDK in dir with phoneOptions.
func (ct *city) phone(t testing.TB, dir string, key []byte, transport http.RoundTripper) *clientsdk.Client {
	t.Helper()
	return openPhone(t, dir, ct.phoneOptions(key, transport))
}

// signIn signs username in on c.
func signIn(t testing.TB, c *clientsdk.Client, username string) {
	t.Helper()
	if _, err := c.Login(context.Background(), username, servertest.CityPassword); err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
}

// loggedIn opens a phone for username in a new folder, signs it in and
// syncs it once.
func (ct *city) loggedIn(t testing.TB, username string) *clientsdk.Client {
	t.Helper()
	return ct.loggedInAt(t, t.TempDir(), testKey(t), username)
}

// loggedInAt is loggedIn in dir, sealed with key.
func (ct *city) loggedInAt(t testing.TB, dir string, key []byte, username string) *clientsdk.Client {
	t.Helper()
	c := ct.phone(t, dir, key, nil)
	signIn(t, c, username)
	mustSync(t, c)
	return c
}

func mustSync(t testing.TB, c *clientsdk.Client) clientsdk.Report {
	t.Helper()
	rep, err := c.Sync(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// visit is an attempt in person that reached the target.
func visit(outcome string) clientsdk.Attempt {
	return clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: outcome, Notes: "上门劝阻"}
}

// writePhoto writes a JPEG-looking file of size bytes in a new folder; the
// same size and seed give the same bytes, so the same photo.
func writePhoto(t testing.TB, size, seed int) string {
	t.Helper()
	data := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{byte(seed), byte(seed >> 8), 7}, size/3+1)...)[:size]
	path := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.jpg", seed))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ------------------------------------------------- phones on a faulty network

// device is one phone on a network that fails on purpose: its SDK folder,
// key, network and backoff log.
type device struct {
	name   string
	user   string
	dir    string
	key    []byte
	net    *faultnet.Transport
	sleeps *sleepLog
	opts   clientsdk.Options
	c      *clientsdk.Client
}

// newDevice opens an SDK in a new folder for username and logs it in over
// a clean network. tweak, when set, changes its options first.
func (ct *city) newDevice(t testing.TB, username string, seed uint64, tweak func(*clientsdk.Options)) *device {
	t.Helper()
	d := &device{name: username, user: username, dir: t.TempDir(), key: testKey(t), net: faultnet.New(seed, nil)}
	d.sleeps = &sleepLog{net: d.net}
	d.opts = clientsdk.Options{
		ServerURL: ct.srv.URL, DeviceName: "faults " + username, Platform: "test", Key: d.key,
		HTTPClient: &http.Client{Transport: d.net, Timeout: 10 * time.Second},
		Retry:      clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4, Sleep: d.sleeps.Sleep},
	}
	if tweak != nil {
		tweak(&d.opts)
	}
	d.open(t)
	t.Cleanup(d.close)
	signIn(t, d.c, username)
	return d
}

func (d *device) open(t testing.TB) {
	t.Helper()
	c, err := clientsdk.Open(d.dir, d.opts)
	if err != nil {
		t.Fatalf("open %s: %v", d.name, err)
	}
	d.c = c
}

func (d *device) close() {
	if d.c != nil {
		_ = d.c.Close()
		d.c = nil
	}
}

func (d *device) mustSync(t testing.TB) clientsdk.Report {
	t.Helper()
	rep, err := d.c.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v", d.name, err)
	}
	return rep
}

// syncSignedIn syncs d, signing in again once when the sync signs it out
// (its refresh token rotated after the backup), and returns the report of
// the first sync.
func (d *device) syncSignedIn(t testing.TB) clientsdk.Report {
	t.Helper()
	rep, err := d.c.Sync(context.Background())
	if errors.Is(err, clientsdk.ErrNotLoggedIn) {
		signIn(t, d.c, d.user)
		_, err = d.c.Sync(context.Background())
	}
	if err != nil {
		t.Fatalf("%s: sync: %v", d.name, err)
	}
	return rep
}

// record records an attempt and returns its op and the attempt's id, read
// from the device's own view (which shows pending ops applied).
func (d *device) record(t testing.TB, warningID, outcome string, reached bool) (clientsdk.OpStatus, string) {
	t.Helper()
	a := clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: reached, Outcome: outcome, Notes: "劝阻记录"}
	if outcome == syncproto.OutcomeAlreadyDefrauded {
		a.LossFen = 123400
	}
	before, _ := d.c.Warning(warningID)
	op, err := d.c.RecordAttempt(warningID, a)
	if err != nil {
		t.Fatalf("%s: record on %s: %v", d.name, warningID, err)
	}
	after, ok := d.c.Warning(warningID)
	if !ok || len(after.Attempts) != len(before.Attempts)+1 {
		t.Fatalf("%s: the view of %s does not show the attempt just recorded (%d -> %d attempts)", d.name, warningID, len(before.Attempts), len(after.Attempts))
	}
	return op, after.Attempts[len(after.Attempts)-1].ID
}

// journal reads d's journal from its folder, closing the SDK for it.
func (d *device) journal(t testing.TB) []localstore.JournalOp {
	t.Helper()
	d.close()
	defer d.open(t)
	s, err := localstore.Open(d.dir, d.key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []localstore.JournalOp
	if err := s.View(func(tx *localstore.Tx) error {
		out, err = tx.Journal(0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// sealedJournal reads the sealed values of d's journal from the raw file,
// closing the SDK for it.
func (d *device) sealedJournal(t testing.TB) map[string][]byte {
	t.Helper()
	d.close()
	defer d.open(t)
	return sealedRecords(t, d.dir, "journal", func(k []byte) string { return fmt.Sprintf("journal op %x", k) })
}

// sleepLog records every backoff the SDK asks for and returns at once. When
// the device's latest answer was a 429, it checks the wait is at least the
// Retry-After it carried.
type sleepLog struct {
	mu         sync.Mutex
	net        *faultnet.Transport
	waits      []time.Duration
	checked429 int
	violations []string
}

func (s *sleepLog) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	if s.net != nil {
		if last := s.net.Last(); last.Status == http.StatusTooManyRequests && last.RetryAfter >= 0 {
			s.checked429++
			if d < time.Duration(last.RetryAfter)*time.Second {
				s.violations = append(s.violations, fmt.Sprintf("waited %v after a 429 with Retry-After: %d", d, last.RetryAfter))
			}
		}
	}
	return ctx.Err()
}

func (s *sleepLog) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// requestLines lists the outcomes of a transport's recent requests as
// "path status code" lines.
func requestLines(h []faultnet.Outcome) []string {
	out := make([]string, len(h))
	for i, o := range h {
		out[i] = fmt.Sprintf("%s %d %s", strings.TrimPrefix(o.Path, "/v1/"), o.Status, o.Code)
	}
	return out
}

// testSeed is the seed of a randomized test: FIELDSYNC_SEED when set (to
// replay a failure), else a new one, logged either way.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	if s := os.Getenv("FIELDSYNC_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FIELDSYNC_SEED=%q: %v", s, err)
		}
		t.Logf("seed %d (from FIELDSYNC_SEED)", seed)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with FIELDSYNC_SEED=%d)", seed, seed)
	return seed
}

// ------------------------------------------------------- the server's truth

// scope is what a device of a user holds, or should: the warnings, units
// and village users of its scope, and the cursor of a pull.
type scope struct {
	cursor   string
	warnings map[string]*syncproto.Warning
	units    map[string]syncproto.Unit
	users    map[string]syncproto.DirectoryUser
}

// pullFresh pulls everything in username's scope from an empty cursor, over
// a clean network, from a device of its own; the cursor is the one at the
// end.
func (ct *city) pullFresh(t testing.TB, username string) scope {
	t.Helper()
	if ct.fresh == nil {
		ct.fresh = map[string]*servertest.Device{}
	}
	dev := ct.fresh[username]
	if dev == nil || dev.BaseURL != ct.srv.URL {
		dev = ct.srv.Login(t, username, servertest.CityPassword)
		ct.fresh[username] = dev
	}
	p := scope{warnings: map[string]*syncproto.Warning{}, units: map[string]syncproto.Unit{}, users: map[string]syncproto.DirectoryUser{}}
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatalf("pull of %s does not end", username)
		}
		resp, err := dev.Pull(context.Background(), syncproto.PullRequest{DeviceID: dev.ID, Cursor: p.cursor, Limit: syncproto.MaxPullLimit})
		if syncproto.ErrorCode(err) == syncproto.CodeTokenExpired {
			// The test moved the server's clock: sign in again.
			delete(ct.fresh, username)
			return ct.pullFresh(t, username)
		}
		if err != nil {
			t.Fatalf("fresh pull as %s: %v", username, err)
		}
		for _, ch := range resp.Changes {
			switch ch.Entity {
			case syncproto.EntityWarning:
				if w, ok := ch.Data.(*syncproto.Warning); ok && ch.Kind == syncproto.ChangePut {
					p.warnings[ch.ID] = w
				} else {
					delete(p.warnings, ch.ID)
				}
			case syncproto.EntityUnit:
				if u, ok := ch.Data.(*syncproto.Unit); ok && ch.Kind == syncproto.ChangePut {
					p.units[u.Code] = *u
				} else {
					delete(p.units, ch.ID)
				}
			case syncproto.EntityUser:
				if u, ok := ch.Data.(*syncproto.DirectoryUser); ok && ch.Kind == syncproto.ChangePut {
					p.users[u.ID] = *u
				} else {
					delete(p.users, ch.ID)
				}
			}
		}
		p.cursor = resp.Cursor
		if !resp.More {
			return p
		}
	}
}

// requireHoldsScope fails unless c holds exactly the server's state of
// username's scope, as a fresh pull brings it: no op left unconfirmed, the
// same warnings, each in the server's state (its summary, on a phone that
// pulls summaries: Options.PullDetail), and the same units and cadres.
func (ct *city) requireHoldsScope(t testing.TB, c *clientsdk.Client, username string) {
	t.Helper()
	want := ct.pullFresh(t, username)
	want.cursor = ""
	got := scope{warnings: map[string]*syncproto.Warning{}, units: map[string]syncproto.Unit{}, users: map[string]syncproto.DirectoryUser{}}
	for _, w := range c.Warnings(clientsdk.Filter{}) {
		if len(w.Ops) > 0 {
			t.Errorf("%s: warning %s still has %d ops not confirmed", username, w.ID, len(w.Ops))
		}
		got.warnings[w.ID] = &w.Warning
		if sw := want.warnings[w.ID]; sw != nil && w.Summary {
			want.warnings[w.ID] = sw.Summarize()
		}
	}
	for _, u := range c.Units() {
		got.units[u.Code] = u
	}
	for _, u := range c.Cadres() {
		got.users[u.ID] = u
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(scope{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s's device differs from the server's state of its scope (-server +device):\n%s", username, diff)
	}
}

// requireAttemptsOnce fails unless each attempt is on the server once.
func (ct *city) requireAttemptsOnce(t testing.TB, attempts ...string) {
	t.Helper()
	n := map[string]int{}
	for _, w := range ct.pullFresh(t, "center1").warnings {
		for _, a := range w.Attempts {
			n[a.ID]++
		}
	}
	for _, a := range attempts {
		if n[a] != 1 {
			t.Errorf("attempt %s is on the server %d times, want once", a, n[a])
		}
	}
}

// opsInLog reads the server's append-only log straight from its store and
// returns the entries of each client op, by op id.
func opsInLog(t testing.TB, srv *servertest.Server) map[string][]store.LogEntry {
	t.Helper()
	m := map[string][]store.LogEntry{}
	err := srv.Store.EachLogEntry(func(_ uint64, e *store.LogEntry) error {
		if e.Op != nil {
			m[e.Op.ID] = append(m[e.Op.ID], *e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the server's log: %v", err)
	}
	return m
}

// requireOnceInLog fails unless each op id is in the server's log exactly
// once: every op the devices made was handled, none twice. It returns the
// log's entries by op id.
func requireOnceInLog(t testing.TB, srv *servertest.Server, opIDs []string) map[string][]store.LogEntry {
	t.Helper()
	logged := opsInLog(t, srv)
	for _, id := range opIDs {
		switch es := logged[id]; len(es) {
		case 1:
		case 0:
			t.Errorf("op %s is not in the server's log: lost", id)
		default:
			var seqs []string
			for _, e := range es {
				seqs = append(seqs, fmt.Sprintf("log seq %d client_seq %d %s/%s", e.Seq, e.Op.ClientSeq, e.Result.Status, e.Result.Code))
			}
			t.Errorf("op %s (%s) is in the server's log %d times: %s", id, es[0].Op.Type, len(es), strings.Join(seqs, "; "))
		}
	}
	return logged
}

func opIDs(ops ...clientsdk.OpStatus) []string {
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.OpID
	}
	return ids
}

// requireListed fails unless c lists each warning.
func requireListed(t testing.TB, c *clientsdk.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, ok := c.Warning(id); !ok {
			t.Errorf("warning %s is not listed", id)
		}
	}
}

// requireWiped fails unless c is revoked and wiped: signed out, holding no
// warning and no directory, and keeping for hand-over exactly the unsent
// ops, in the order they were made.
func requireWiped(t testing.TB, c *clientsdk.Client, unsent []clientsdk.OpStatus) {
	t.Helper()
	st := c.Status()
	if !st.Revoked || !st.Wiped || st.LoggedIn {
		t.Errorf("status %+v; want revoked, wiped, logged out", st)
	}
	if n := len(c.Warnings(clientsdk.Filter{})); n != 0 {
		t.Errorf("%d warnings listed after a wipe", n)
	}
	if n := len(c.Units()) + len(c.Cadres()); n != 0 {
		t.Errorf("%d directory entries listed after a wipe", n)
	}
	type handed struct {
		ID, WarningID string
		ClientSeq     uint64
	}
	var got, want []handed
	for _, op := range c.HandOver() {
		got = append(got, handed{op.ID, op.WarningID, op.ClientSeq})
	}
	for _, op := range unsent {
		want = append(want, handed{op.OpID, op.WarningID, op.ClientSeq})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hand-over is not the unsent ops (-unsent +hand-over):\n%s", diff)
	}
}

// ------------------------------------------------------- the phone's file

// sealedRecords reads, from a closed SDK folder, the sealed value of every
// record of a bucket of its file, by name(key).
func sealedRecords(t testing.TB, dir, bucket string, name func(key []byte) string) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, localstore.FileName), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open the local file read-only (is the SDK closed?): %v", err)
	}
	defer db.Close()
	out := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no %s bucket", bucket)
		}
		return b.ForEach(func(k, v []byte) error {
			out[name(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sealedWarnings reads the sealed warning records of a closed SDK folder,
// by warning id.
func sealedWarnings(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	return sealedRecords(t, dir, "warnings", func(k []byte) string { return string(k) })
}

// requireNotInFile fails if any file of the SDK's folder holds any of the
// sealed records anywhere, free pages included.
func requireNotInFile(t testing.TB, dir string, sealed map[string][]byte) {
	t.Helper()
	if len(sealed) == 0 {
		t.Fatal("nothing to look for")
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, v := range sealed {
			if bytes.Contains(data, v) {
				t.Errorf("%s still holds the sealed record %s (%d bytes)", filepath.Base(path), name, len(v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// requireInFile fails unless the SDK's file holds each sealed record: the
// check of requireNotInFile can see them.
func requireInFile(t testing.TB, dir string, sealed map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, localstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range sealed {
		if !bytes.Contains(data, v) {
			t.Errorf("the file lacks the sealed record %s", name)
		}
	}
}
