package clientsdk_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/internal/soak"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// convergeRates are the random faults of every request during the rounds:
// about one request in five goes wrong.
var convergeRates = faultnet.Rates{
	DropRequest: 0.04, DropResponse: 0.04, Delay: 0.04, Duplicate: 0.03, Unavailable: 0.03, RateLimited: 0.03,
}

// madeOp is what the test knows of one op a device made.
type madeOp struct {
	id      string
	dev     *device
	typ     string
	warning string
	attempt string
}

// converge is the state of one convergence run.
type converge struct {
	t     *testing.T
	ctx   context.Context
	ct    *city
	rng   *rand.Rand
	devs  []*device
	byOp  map[string]*madeOp
	byAtt map[string]*madeOp
	// needLogin lists devices whose session ended (a refresh answer lost
	// after the server rotated the token: PROTOCOL.md section 3).
	needLogin map[*device]bool

	importer    *servertest.Device
	importerNet *faultnet.Transport
	imported    int

	photos int

	syncs, syncErrs, relogins, imports, clockMoves int
	unexpected                                     []string
}

// TestConverge drives devices of every role (the cadres a1, a2x, a2y and
// b1, the leads leadA and leadB, county1 and center1), each with its own
// SDK folder and a faulty network, through thousands of random rounds:
// recording attempts with random outcomes, escalating, assigning and
// reassigning, dispatching, reviewing, importing more warnings, going
// offline and online, syncing (which may fail), and the server's clock
// jumping past the access token lifetime. Then the network heals, every
// device syncs until it is quiet, and:
//
//   - each device holds exactly the server's state of its scope;
//   - every attempt any device recorded is on the server exactly once,
//     unless its op was rejected (then on no warning), and no cadre's
//     attempt was rejected: one reassigned away is kept, flagged
//     stale_assignee (PROTOCOL.md section 6);
//   - every op any device made is in the server's log exactly once, and the
//     device shows it rejected exactly when the server rejected it;
//   - no op is left pending, sent or applied-but-unconfirmed;
//   - after a 429 the SDK always waited at least Retry-After.
func TestConverge(t *testing.T) {
	rounds := soak.Scale(2500)
	if testing.Short() {
		rounds = 400
	}
	seed := testSeed(t)
	start := time.Now()
	cv := &converge{
		t: t, ctx: context.Background(), rng: rand.New(rand.NewPCG(seed, 0xc0ffee)),
		byOp: map[string]*madeOp{}, byAtt: map[string]*madeOp{}, needLogin: map[*device]bool{},
	}
	cv.ct = newCity(t)
	cv.importerNet = faultnet.New(seed^0x1234, nil)
	cv.loginImporter()
	cv.importSome(12)

	for i, name := range []string{"a1", "a2x", "a2y", "b1", "leadA", "leadB", "county1", "center1"} {
		pushBatch, pullLimit := 2+cv.rng.IntN(10), 3+cv.rng.IntN(40)
		d := cv.ct.newDevice(t, name, seed+uint64(i+1)*7919, func(o *clientsdk.Options) {
			o.PushBatch, o.PullLimit = pushBatch, pullLimit
		})
		d.mustSync(t)
		d.net.SetRates(convergeRates)
		cv.devs = append(cv.devs, d)
	}
	cv.importerNet.SetRates(convergeRates)

	for i := 0; i < rounds; i++ {
		if i%(rounds/8) == rounds/16 {
			// Besides the random jumps, a few sure ones: every token
			// issued so far expires.
			cv.ct.clock.Add(16 * time.Minute)
			cv.clockMoves++
		}
		cv.round()
	}
	roundsTook := time.Since(start)
	cv.settle()
	cv.check()

	counts := map[faultnet.Kind]int{}
	codes := map[string]int{}
	for _, d := range cv.devs {
		for k, n := range d.net.Counts() {
			counts[k] += n
		}
		for c, n := range d.net.Codes() {
			codes[c] += n
		}
	}
	t.Logf("%d rounds in %v (%v with the final syncs and checks): %d syncs (%d failed), %d ops, %d attempts (%d with a photo), %d imports, %d clock jumps, %d re-logins",
		rounds, roundsTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), cv.syncs, cv.syncErrs, len(cv.byOp), len(cv.byAtt), cv.photos, cv.imports, cv.clockMoves, cv.relogins)
	t.Logf("faults: %v; error answers: %v", counts, codes)
	if codes[syncproto.CodeTokenExpired] == 0 {
		t.Errorf("no request met an expired access token")
	}
	for _, k := range append(faultnet.Kinds, faultnet.Offline) {
		if counts[k] == 0 {
			t.Errorf("no request met fault %s: the run proves nothing about it", k)
		}
	}
	// Every 401 unauthorized was a refresh presenting a token the server
	// had already rotated: an earlier refresh of the device reached the
	// server and its answer was lost (or replayed). PROTOCOL.md section 3
	// then ends the session; the person signs in again.
	lostSessions := 0
	for _, d := range cv.devs {
		// spent: a refresh since the last session began reached the
		// server, which rotated the token, and the device never got the
		// new one.
		spent := false
		for _, o := range d.net.History() {
			switch {
			case o.Code == syncproto.CodeUnauthorized:
				if o.Path != "/v1/auth/refresh" || !(spent || o.Kind == faultnet.Duplicate) {
					t.Errorf("%s: unexplained 401 unauthorized: %+v", d.name, o)
				}
				lostSessions++
				spent = false
			case o.Path == "/v1/auth/refresh" && (o.Kind == faultnet.DropResponse || o.Kind == faultnet.Duplicate):
				spent = true
			case o.Status == http.StatusOK && (o.Path == "/v1/auth/refresh" || o.Path == "/v1/auth/login"):
				spent = false
			}
		}
	}
	t.Logf("sessions ended by a lost refresh answer: %d", lostSessions)
	checked, violations := 0, 0
	for _, d := range cv.devs {
		d.sleeps.mu.Lock()
		checked += d.sleeps.checked429
		violations += len(d.sleeps.violations)
		for _, v := range d.sleeps.violations {
			t.Errorf("%s: %s", d.name, v)
		}
		d.sleeps.mu.Unlock()
	}
	if checked == 0 {
		t.Errorf("no backoff followed a 429: Retry-After was never checked")
	}
	t.Logf("backoffs after a 429 checked: %d, too short: %d", checked, violations)
}

// round plays one random step.
func (cv *converge) round() {
	rng := cv.rng
	switch r := rng.Float64(); {
	case r < 0.015:
		cv.importSome(1 + rng.IntN(4))
		return
	case r < 0.025:
		// Every token issued so far expires at once.
		cv.ct.clock.Add(16 * time.Minute)
		cv.clockMoves++
		return
	}
	d := cv.devs[rng.IntN(len(cv.devs))]
	if cv.needLogin[d] {
		cv.login(d)
		return
	}
	switch r := rng.Float64(); {
	case d.net.Offline() && r < 0.25:
		d.net.SetOffline(false)
	case r < 0.04:
		d.net.SetOffline(true)
	case r < 0.37:
		cv.sync(d)
	default:
		cv.act(d)
	}
}

func (cv *converge) login(d *device) {
	if _, err := d.c.Login(cv.ctx, d.user, servertest.CityPassword); err == nil {
		delete(cv.needLogin, d)
		cv.relogins++
	}
}

func (cv *converge) sync(d *device) (clientsdk.Report, error) {
	cv.syncs++
	rep, err := d.c.Sync(cv.ctx)
	switch {
	case err == nil:
	case errors.Is(err, clientsdk.ErrNotLoggedIn):
		cv.needLogin[d] = true
		cv.syncErrs++
	case clientsdk.Transient(err):
		cv.syncErrs++
	default:
		cv.syncErrs++
		if len(cv.unexpected) < 20 {
			cv.unexpected = append(cv.unexpected, fmt.Sprintf("%s: sync: %v", d.name, err))
		}
	}
	return rep, err
}

// act makes one op a person of the device's role would make.
func (cv *converge) act(d *device) {
	rng := cv.rng
	user, _ := d.c.User()
	ws := d.c.Warnings(clientsdk.Filter{})
	if len(ws) == 0 {
		cv.sync(d)
		return
	}
	w := ws[rng.IntN(len(ws))]
	r := rng.Float64()
	if user.Role == syncproto.RoleVillage {
		switch {
		case r < 0.85:
			cv.record(d, w.ID)
		default:
			cv.add(d, w.ID, "")(d.c.Escalate(w.ID, "需要民警协助"))
		}
		return
	}
	switch {
	case r < 0.30:
		cv.assign(d, user, ws)
	case r < 0.42:
		cv.dispatch(d, user, w)
	case r < 0.75:
		cv.review(d, ws)
	case r < 0.93:
		cv.record(d, w.ID)
	default:
		cv.add(d, w.ID, "")(d.c.Escalate(w.ID, "多次劝阻无效"))
	}
}

// add returns a function that records the op an SDK call returned.
func (cv *converge) add(d *device, warningID, attemptID string) func(clientsdk.OpStatus, error) {
	return func(op clientsdk.OpStatus, err error) {
		if err != nil {
			cv.t.Fatalf("%s: %v", d.name, err)
		}
		rec := &madeOp{id: op.OpID, dev: d, typ: op.Type, warning: warningID, attempt: attemptID}
		cv.byOp[op.OpID] = rec
		if attemptID != "" {
			cv.byAtt[attemptID] = rec
		}
	}
}

// record records an attempt with a random outcome; now and then a cadre
// attaches a photo (from a small set, so some photos serve several
// attempts).
func (cv *converge) record(d *device, warningID string) {
	rng := cv.rng
	outcomes := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget, syncproto.OutcomeUnreachable, syncproto.OutcomeRefused, syncproto.OutcomeRefused, syncproto.OutcomeUnreachable}
	outcome := outcomes[rng.IntN(len(outcomes))]
	a := clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: outcome != syncproto.OutcomeUnreachable && rng.IntN(4) > 0, Outcome: outcome, Notes: "劝阻记录"}
	if outcome == syncproto.OutcomeAlreadyDefrauded {
		a.LossFen = int64(1 + rng.IntN(1_000_000))
	}
	if u, _ := d.c.User(); u.Role == syncproto.RoleVillage && rng.IntN(7) == 0 {
		a.Photos = []string{writePhoto(cv.t, 800, rng.IntN(12))}
		cv.photos++
	}
	before, _ := d.c.Warning(warningID)
	op, err := d.c.RecordAttempt(warningID, a)
	if err != nil {
		cv.t.Fatalf("%s: record: %v", d.name, err)
	}
	after, _ := d.c.Warning(warningID)
	if len(after.Attempts) != len(before.Attempts)+1 {
		cv.t.Fatalf("%s: the view does not show the attempt just recorded", d.name)
	}
	cv.add(d, warningID, after.Attempts[len(after.Attempts)-1].ID)(op, nil)
}

// assign gives a warning (mostly an open one) to a cadre of the lead's
// scope, another than its assignee when there is one.
func (cv *converge) assign(d *device, user syncproto.UserInfo, ws []clientsdk.Warning) {
	rng := cv.rng
	var open []clientsdk.Warning
	for _, w := range ws {
		if w.Status != syncproto.WarningResolved && w.Status != syncproto.WarningClosed {
			open = append(open, w)
		}
	}
	w := ws[rng.IntN(len(ws))]
	if len(open) > 0 && rng.IntN(10) > 0 {
		w = open[rng.IntN(len(open))]
	}
	var cadres []syncproto.DirectoryUser
	for _, u := range d.c.Cadres() {
		if u.Active && u.ID != w.Assignee && syncproto.InScope(user.Unit, u.Unit) {
			cadres = append(cadres, u)
		}
	}
	if len(cadres) == 0 {
		cv.sync(d)
		return
	}
	cv.add(d, w.ID, "")(d.c.Assign(w.ID, cadres[rng.IntN(len(cadres))].ID))
}

// dispatch sends a warning to another unit of the lead's scope.
func (cv *converge) dispatch(d *device, user syncproto.UserInfo, w clientsdk.Warning) {
	var units []string
	for _, u := range d.c.Units() {
		if u.Code != w.Unit && syncproto.InScope(user.Unit, u.Code) {
			units = append(units, u.Code)
		}
	}
	if len(units) == 0 {
		cv.sync(d)
		return
	}
	cv.add(d, w.ID, "")(d.c.Dispatch(w.ID, units[cv.rng.IntN(len(units))]))
}

// review approves resolved work or returns work done; now and then it
// tries what the rules forbid, to be rejected.
func (cv *converge) review(d *device, ws []clientsdk.Warning) {
	rng := cv.rng
	var done []clientsdk.Warning
	for _, w := range ws {
		switch w.Status {
		case syncproto.WarningResolved, syncproto.WarningInProgress, syncproto.WarningClosed:
			done = append(done, w)
		}
	}
	w := ws[rng.IntN(len(ws))]
	if len(done) > 0 && rng.IntN(8) > 0 {
		w = done[rng.IntN(len(done))]
	}
	decision := syncproto.DecisionReturn
	if w.Status == syncproto.WarningResolved && rng.IntN(10) < 7 || rng.IntN(10) == 0 {
		decision = syncproto.DecisionApprove
	}
	cv.add(d, w.ID, "")(d.c.Review(w.ID, decision, "复核"))
}

// loginImporter signs center1's import tool in, over its faulty network.
func (cv *converge) loginImporter() {
	var id string
	if cv.importer != nil {
		id = cv.importer.ID
	} else {
		id = uuid.NewString()
	}
	for try := 0; ; try++ {
		dev, err := cv.ct.srv.LoginDevice("center1", servertest.CityPassword, id)
		if err == nil {
			dev.HTTP = &http.Client{Transport: cv.importerNet, Timeout: 10 * time.Second}
			cv.importer = dev
			return
		}
		if try > 20 {
			cv.t.Fatalf("importer login: %v", err)
		}
	}
}

// importSome imports n new warnings as the center, at random units; a
// failed import is sent again as it was (the feed is idempotent on
// external_id).
func (cv *converge) importSome(n int) {
	units := []string{servertest.UnitVillA1, servertest.UnitVillA1, servertest.UnitVillA2, servertest.UnitVillA2,
		servertest.UnitVillB1, servertest.UnitVillB1, servertest.UnitTownA, servertest.UnitTownB, servertest.UnitCounty, servertest.UnitCity}
	rows := make([]syncproto.FeedWarning, n)
	for i := range rows {
		cv.imported++
		rows[i] = row(fmt.Sprintf("CV%05d", cv.imported), units[cv.rng.IntN(len(units))])
	}
	for try := 0; ; try++ {
		if try == 20 {
			cv.importerNet.SetRates(faultnet.Rates{})
			defer cv.importerNet.SetRates(convergeRates)
		}
		resp, err := cv.importer.ImportFeed(cv.ctx, rows)
		if err == nil {
			if len(resp.Created)+len(resp.Duplicates) != n || len(resp.Invalid) > 0 {
				cv.t.Fatalf("import: %+v", resp)
			}
			cv.imports++
			return
		}
		switch syncproto.ErrorCode(err) {
		case syncproto.CodeTokenExpired, syncproto.CodeUnauthorized:
			cv.loginImporter()
		}
		if try > 40 {
			cv.t.Fatalf("import keeps failing: %v", err)
		}
	}
}

// settle heals the network and syncs every device until a whole pass
// pushes nothing and fails nowhere.
func (cv *converge) settle() {
	t := cv.t
	for _, d := range cv.devs {
		d.net.SetRates(faultnet.Rates{})
		d.net.SetOffline(false)
	}
	for pass := 0; ; pass++ {
		if pass == 12 {
			t.Fatalf("devices do not settle after %d passes of clean syncs", pass)
		}
		quiet := true
		for _, d := range cv.devs {
			if cv.needLogin[d] {
				if _, err := d.c.Login(cv.ctx, d.user, servertest.CityPassword); err != nil {
					t.Fatalf("%s: login on a clean network: %v", d.name, err)
				}
				delete(cv.needLogin, d)
				cv.relogins++
			}
			rep, err := d.c.Sync(cv.ctx)
			if err != nil {
				t.Logf("pass %d: %s: sync on a clean network: %v", pass, d.name, err)
				quiet = false
				continue
			}
			if rep.Pushed > 0 || rep.Photos > 0 {
				quiet = false
			}
		}
		if quiet {
			return
		}
	}
}

// check compares every device with the server.
func (cv *converge) check() {
	t := cv.t
	for _, msg := range cv.unexpected {
		t.Errorf("unexpected sync error: %s", msg)
	}
	// (a) Each device holds exactly the server's state of its scope.
	for _, d := range cv.devs {
		cv.ct.requireHoldsScope(t, d.c, d.user)
	}
	// (c) Nothing is stuck: every op left on a device is a rejected one.
	rejected := map[string]clientsdk.OpStatus{}
	for _, d := range cv.devs {
		for _, op := range d.c.Ops() {
			if op.State != "rejected" {
				t.Errorf("%s: op %s (%s) is still %s", d.name, op.OpID, op.Type, op.State)
			}
		}
		if st := d.c.Status(); st.Pending != 0 {
			t.Errorf("%s: %d ops pending", d.name, st.Pending)
		}
		for _, op := range d.c.Rejected() {
			rejected[op.OpID] = op
		}
	}
	// Every op is in the log exactly once, and rejected on the device
	// exactly when the server rejected it.
	ids := make([]string, 0, len(cv.byOp))
	for id := range cv.byOp {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	logged := requireOnceInLog(t, cv.ct.srv, ids)
	byCode := map[string]int{}
	for _, id := range ids {
		op := cv.byOp[id]
		es := logged[id]
		if len(es) == 0 {
			continue
		}
		serverRejected := es[0].Result.Status == syncproto.StatusRejected
		_, deviceRejected := rejected[id]
		if serverRejected != deviceRejected {
			t.Errorf("%s: op %s (%s): server result %s/%s, device shows rejected=%v", op.dev.name, id, op.typ, es[0].Result.Status, es[0].Result.Code, deviceRejected)
		}
		if serverRejected {
			byCode[op.typ+"/"+es[0].Result.Code]++
			if u, _ := op.dev.c.User(); u.Role == syncproto.RoleVillage {
				t.Errorf("%s: cadre's op %s (%s on %s) rejected: %s %s", op.dev.name, id, op.typ, op.warning, es[0].Result.Code, es[0].Result.Message)
			}
		}
	}
	// (b) Every attempt is on the server exactly once, unless rejected.
	all := cv.ct.pullFresh(t, "center1").warnings
	count := map[string]int{}
	stale, keptAfterMove := 0, 0
	for _, w := range all {
		for _, a := range w.Attempts {
			count[a.ID]++
			if rec := cv.byAtt[a.ID]; rec != nil {
				if u, _ := rec.dev.c.User(); u.Role == syncproto.RoleVillage && a.By != w.Assignee {
					keptAfterMove++
				}
			}
		}
		for _, f := range w.Flags {
			if f.Code == syncproto.FlagStaleAssignee {
				stale++
			}
		}
		if len(w.MissingPhotos) > 0 {
			t.Errorf("warning %s still misses photos %v after every device synced", w.ID, w.MissingPhotos)
		}
	}
	for att, rec := range cv.byAtt {
		want := 1
		if _, ok := rejected[rec.id]; ok {
			want = 0
		}
		if count[att] != want {
			t.Errorf("%s: attempt %s on %s is on the server %d times, want %d", rec.dev.name, att, rec.warning, count[att], want)
		}
	}
	for att, n := range count {
		if cv.byAtt[att] == nil {
			t.Errorf("attempt %s (x%d) on the server was recorded by no device", att, n)
		}
	}
	if (keptAfterMove == 0 || stale == 0) && !testing.Short() {
		t.Errorf("no cadre's attempt on a warning since given to another (%d kept, %d stale_assignee flags): the run proves nothing about them", keptAfterMove, stale)
	}
	var codes []string
	for k, n := range byCode {
		codes = append(codes, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(codes)
	t.Logf("%d warnings; attempts kept by cadres no longer assigned: %d; stale_assignee flags: %d; rejected ops: %s",
		len(all), keptAfterMove, stale, strings.Join(codes, " "))
}
