package clientsdk_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/internal/soak"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// "Killing the client at any step of a sync and reopening it loses nothing
// and duplicates nothing." Two tests show it:
//
//   - TestCrash_EveryStep stops a sync in this process at its N-th request,
//     for every N a sync has, both before the request is sent and after the
//     server answered it, by a panic or by a failure that ends the sync at
//     once; the client is closed right there (the SDK commits each step in
//     its own transaction before it moves on, so the folder then holds what
//     a crash would leave) and the folder is opened again.
//   - TestCrash_Kill runs the SDK in a child process (this test binary run
//     again) that records and syncs in a loop, and SIGKILLs it at random
//     moments.
//
// After each crash, the reopened folder must still hold every op that is not
// on the server yet; after a clean sync, every op is in the server's log
// exactly once, every attempt on the server exactly once, nothing is left
// pending, and the device holds exactly the server's state.

// crash is the panic value of a simulated crash.
type crash struct{ step int }

// crashPoint stops a sync at its step-th request.
type crashPoint struct {
	step   int
	after  bool // after the server answered, else before sending
	panics bool // panic, else fail and cancel the sync
	cancel context.CancelFunc
	seen   int
	fired  bool
}

func (cp *crashPoint) hook(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
	if cp.fired {
		return nil, fmt.Errorf("%w: the client is dead", faultnet.ErrInjected)
	}
	cp.seen++
	if cp.seen != cp.step {
		return next()
	}
	cp.fired = true
	if cp.after {
		if resp, err := next(); err == nil {
			_, _ = faultnet.ReadAnswer(resp)
		}
	}
	if cp.panics {
		panic(crash{step: cp.step})
	}
	cp.cancel()
	return nil, fmt.Errorf("%w: killed at step %d", faultnet.ErrInjected, cp.step)
}

// syncUntilCrash runs one sync with the crash point installed and reports
// whether it crashed (false: the sync has fewer steps).
func (cp *crashPoint) syncUntilCrash(t *testing.T, d *device) (crashed bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp.cancel = cancel
	d.net.SetHook(cp.hook)
	defer d.net.SetHook(nil)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	_, err := d.c.Sync(ctx)
	if !cp.fired && err != nil {
		t.Fatalf("%s: sync without a crash: %v", d.name, err)
	}
	return cp.fired
}

// crashBook is what the crash tests know the devices made.
type crashBook struct {
	ops      []string
	attempts []string
	relogins int
}

// checkNotLost fails unless every op made is still in the device's outbox
// or already in the server's log, and none is in the log twice.
func (b *crashBook) checkNotLost(t testing.TB, ct *city, devs ...*device) {
	t.Helper()
	held := map[string]bool{}
	for _, d := range devs {
		for _, op := range d.c.Ops() {
			held[op.OpID] = true
		}
	}
	logged := opsInLog(t, ct.srv)
	for _, id := range b.ops {
		if len(logged[id]) > 1 {
			t.Errorf("op %s is in the server's log %d times", id, len(logged[id]))
		}
		if !held[id] && len(logged[id]) == 0 {
			t.Errorf("op %s is neither on the device nor on the server: lost", id)
		}
	}
}

// cleanSync syncs d over a clean network until it succeeds, logging in
// again if the crash cost it its session (a refresh answered by the server
// but never stored: PROTOCOL.md section 3 revokes the chain when the old
// refresh token comes back).
func (b *crashBook) cleanSync(t testing.TB, d *device) {
	t.Helper()
	for try := 0; ; try++ {
		_, err := d.c.Sync(context.Background())
		if err == nil {
			return
		}
		if try == 3 {
			t.Fatalf("%s: clean sync after a crash: %v", d.name, err)
		}
		if errors.Is(err, clientsdk.ErrNotLoggedIn) {
			if _, err := d.c.Login(context.Background(), d.user, servertest.CityPassword); err != nil {
				t.Fatalf("%s: login after a crash: %v", d.name, err)
			}
			b.relogins++
		}
	}
}

// checkAll fails unless every op is in the log once, every attempt on the
// server once, nothing is left to send, and each device holds exactly the
// server's state.
func (b *crashBook) checkAll(t testing.TB, ct *city, devs ...*device) {
	t.Helper()
	logged := requireOnceInLog(t, ct.srv, b.ops)
	for _, d := range devs {
		for _, op := range d.c.Ops() {
			if op.State != "rejected" {
				t.Errorf("%s: op %s (%s) is still %s", d.name, op.OpID, op.Type, op.State)
				continue
			}
			if es := logged[op.OpID]; len(es) == 1 && es[0].Result.Status != syncproto.StatusRejected {
				t.Errorf("%s: op %s shown rejected, the server says %s", d.name, op.OpID, es[0].Result.Status)
			}
		}
		ct.requireHoldsScope(t, d.c, d.user)
	}
	ct.requireAttemptsOnce(t, b.attempts...)
}

// TestCrash_EveryStep stops a sync at each of its steps in turn, before
// the request and after the answer, for a cadre (attempts, some with
// photos, and escalations) and a lead (returns, assignments, escalations),
// with and without an access token to refresh first.
func TestCrash_EveryStep(t *testing.T) {
	ct := newCity(t)
	var rows []syncproto.FeedWarning
	for i := range 6 {
		rows = append(rows, row(fmt.Sprintf("ES-A1-%d", i), servertest.UnitVillA1))
	}
	for i := range 3 {
		rows = append(rows, row(fmt.Sprintf("ES-A2-%d", i), servertest.UnitVillA2))
	}
	ct.importWarnings(t, rows...)
	sdkClock := &fakeclock.Offset{}
	small := func(o *clientsdk.Options) { o.PushBatch, o.PullLimit, o.Now = 2, 1, sdkClock.Now }
	cadre := ct.newDevice(t, "a1", 100, small)
	lead := ct.newDevice(t, "leadA", 101, small)
	cadre.mustSync(t)
	lead.mustSync(t)
	rng := rand.New(rand.NewPCG(7, 11))
	book := &crashBook{}

	makeOps := func(d *device, iter int) {
		ws := d.c.Warnings(clientsdk.Filter{})
		if len(ws) == 0 {
			t.Fatalf("%s holds no warnings", d.name)
		}
		pick := func() clientsdk.Warning { return ws[rng.IntN(len(ws))] }
		add := func(op clientsdk.OpStatus, err error) {
			if err != nil {
				t.Fatalf("%s: %v", d.name, err)
			}
			book.ops = append(book.ops, op.OpID)
		}
		if d == cadre {
			for i := range 3 {
				outcome := []string{syncproto.OutcomeRefused, syncproto.OutcomeDissuaded, syncproto.OutcomeUnreachable}[rng.IntN(3)]
				a := clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: outcome != syncproto.OutcomeUnreachable, Outcome: outcome, Notes: "上门"}
				if i == 0 && iter%2 == 0 {
					a.Photos = []string{writePhoto(t, 800, iter)}
				}
				w, _ := d.c.Warning(pick().ID)
				before := len(w.Attempts)
				op, err := d.c.RecordAttempt(w.ID, a)
				add(op, err)
				v, _ := d.c.Warning(w.ID)
				if len(v.Attempts) != before+1 {
					t.Fatalf("the view does not show the attempt just recorded")
				}
				book.attempts = append(book.attempts, v.Attempts[len(v.Attempts)-1].ID)
			}
			if iter%3 == 0 {
				add(d.c.Escalate(pick().ID, "需要协助"))
			}
			return
		}
		var done, a2 []clientsdk.Warning
		for _, w := range ws {
			switch {
			case w.Status == syncproto.WarningResolved || w.Status == syncproto.WarningInProgress:
				done = append(done, w)
			case w.Unit == servertest.UnitVillA2 && w.Status != syncproto.WarningClosed:
				a2 = append(a2, w)
			}
		}
		if len(done) > 0 {
			add(d.c.Review(done[rng.IntN(len(done))].ID, syncproto.DecisionReturn, "请补充"))
		}
		for range 2 {
			if len(a2) > 0 {
				who := []string{ct.ids["a2x"], ct.ids["a2y"]}[rng.IntN(2)]
				add(d.c.Assign(a2[rng.IntN(len(a2))].ID, who))
			}
			add(d.c.Escalate(pick().ID, "复杂情况"))
		}
	}

	iter, crashes := 0, 0
	steps := map[string]int{}
	for _, after := range []bool{false, true} {
		for _, d := range []*device{cadre, lead} {
			for _, refresh := range []bool{false, true} {
				key := fmt.Sprintf("%s/after=%v/refresh=%v", d.name, after, refresh)
				// Syncs differ in length (photos, pages): go on past the
				// first sync that ends before step n.
				for n, misses := 1, 0; misses < 3; n++ {
					if n > 60 {
						t.Fatalf("%s: a sync with more than 60 steps", key)
					}
					iter++
					makeOps(d, iter)
					if refresh {
						// Both clocks move past the token's 15 minutes:
						// the sync starts with a refresh.
						ct.clock.Add(16 * time.Minute)
						sdkClock.Add(16 * time.Minute)
					}
					cp := &crashPoint{step: n, after: after, panics: n%2 == 1}
					crashed := cp.syncUntilCrash(t, d)
					d.close()
					d.open(t)
					book.checkNotLost(t, ct, d)
					book.cleanSync(t, d)
					if t.Failed() {
						t.Fatalf("%s: after a crash at step %d (panic: %v)", key, n, cp.panics)
					}
					if !crashed {
						misses++
						continue
					}
					crashes++
					steps[key] = n
				}
			}
		}
	}
	cadre.mustSync(t)
	lead.mustSync(t)
	book.checkAll(t, ct, cadre, lead)
	t.Logf("%d crashes; most steps crashed at: %v; %d ops, %d attempts; %d logins lost to a crash after a refresh", crashes, steps, len(book.ops), len(book.attempts), book.relogins)
	for k, n := range steps {
		if n < 4 {
			t.Errorf("%s: syncs had only %d steps: the test crashed too few places", k, n)
		}
	}
}

// Environment of the child process of TestCrash_Kill.
const (
	crashChildEnv      = "FIELDSYNC_CRASH_CHILD"
	crashChildDir      = "FIELDSYNC_CRASH_DIR"
	crashChildKey      = "FIELDSYNC_CRASH_KEY"
	crashChildURL      = "FIELDSYNC_CRASH_URL"
	crashChildWarnings = "FIELDSYNC_CRASH_WARNINGS"
	crashChildSeed     = "FIELDSYNC_CRASH_SEED"
)

// TestCrash_KillChild is not a test: it is the phone TestCrash_Kill runs in
// a child process and kills. It records and syncs in a loop, printing each
// op once RecordAttempt or Escalate has returned (committed).
func TestCrash_KillChild(t *testing.T) {
	if os.Getenv(crashChildEnv) == "" {
		t.Skip("the child process of TestCrash_Kill")
	}
	os.Exit(crashChild())
}

func crashChild() int {
	fail := func(format string, args ...any) int {
		fmt.Printf("error "+format+"\n", args...)
		return 2
	}
	// The parent holds our stdin: when it dies, so do we.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	key, err := hex.DecodeString(os.Getenv(crashChildKey))
	if err != nil {
		return fail("key: %v", err)
	}
	var seed uint64
	fmt.Sscan(os.Getenv(crashChildSeed), &seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	net := faultnet.New(seed, nil)
	// Short pauses on the wire let kills land while a request is out.
	net.SetRates(faultnet.Rates{Delay: 0.5})
	net.SetMaxDelay(3 * time.Millisecond)
	dir := os.Getenv(crashChildDir)
	c, err := clientsdk.Open(dir, clientsdk.Options{
		ServerURL: os.Getenv(crashChildURL), Key: key, PushBatch: 2, PullLimit: 3,
		HTTPClient: &http.Client{Transport: net, Timeout: 10 * time.Second},
		Retry:      clientsdk.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 3},
	})
	if err != nil {
		return fail("open: %v", err)
	}
	warnings := strings.Split(os.Getenv(crashChildWarnings), ",")
	photo := filepath.Join(dir, "child-photo.jpg")
	if err := os.WriteFile(photo, append([]byte{0xff, 0xd8, 0xff, 0xe0}, []byte(fmt.Sprintf("photo %d", seed))...), 0o600); err != nil {
		return fail("photo: %v", err)
	}
	fmt.Println("ready")
	for i := 0; i < 500; i++ {
		w := warnings[rng.IntN(len(warnings))]
		if rng.IntN(4) == 0 {
			op, err := c.Escalate(w, "需要协助")
			if err != nil {
				return fail("escalate: %v", err)
			}
			fmt.Printf("op %s -\n", op.OpID)
		} else {
			before, _ := c.Warning(w)
			a := clientsdk.Attempt{Method: syncproto.MethodPhone, Reached: true, Outcome: syncproto.OutcomeRefused, Notes: "电话劝阻"}
			if rng.IntN(5) == 0 {
				a.Photos = []string{photo}
			}
			op, err := c.RecordAttempt(w, a)
			if err != nil {
				return fail("record: %v", err)
			}
			v, _ := c.Warning(w)
			if len(v.Attempts) != len(before.Attempts)+1 {
				return fail("the view does not show the attempt just recorded")
			}
			fmt.Printf("op %s %s\n", op.OpID, v.Attempts[len(v.Attempts)-1].ID)
		}
		if rng.IntN(3) == 0 {
			fmt.Println("sync")
			if _, err := c.Sync(context.Background()); errors.Is(err, clientsdk.ErrNotLoggedIn) {
				fmt.Println("logged-out")
				return 0
			}
		}
	}
	c.Close()
	fmt.Println("done")
	return 0
}

// TestCrash_Kill runs the SDK in a child process that records and syncs in
// a loop, SIGKILLs it at random moments (20 times; 6 with -short), and
// after each kill opens its folder here: bbolt's check is clean, and every
// op the child made is still on the phone or on the server, none twice.
// At the end a clean sync puts every op on the server exactly once.
func TestCrash_Kill(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	kills := soak.Scale(20)
	if testing.Short() {
		kills = 6
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	ct := newCity(t)
	var rows []syncproto.FeedWarning
	for i := range 5 {
		rows = append(rows, row(fmt.Sprintf("KC%d", i), servertest.UnitVillA1))
	}
	ids := ct.importWarnings(t, rows...)
	var warningIDs []string
	for _, id := range ids {
		warningIDs = append(warningIDs, id)
	}
	slices.Sort(warningIDs)
	d := ct.newDevice(t, "a1", seed, nil)
	d.mustSync(t)
	d.close()

	book := &crashBook{}
	known := map[string]bool{}
	addOp := func(op, att string) {
		if !known[op] {
			known[op] = true
			book.ops = append(book.ops, op)
			if att != "-" && att != "" {
				book.attempts = append(book.attempts, att)
			}
		}
	}
	midSync, finished := 0, 0
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash_KillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			crashChildEnv+"=1", crashChildDir+"="+d.dir, crashChildKey+"="+hex.EncodeToString(d.key),
			crashChildURL+"="+ct.srv.URL, crashChildWarnings+"="+strings.Join(warningIDs, ","),
			fmt.Sprintf("%s=%d", crashChildSeed, seed+uint64(k)))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Should the test stop early, no child outlives it.
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill after a random number of syncs have started, a random
		// moment later.
		syncsBeforeKill := rng.IntN(4)
		wait := time.Duration(rng.IntN(25_000)) * time.Microsecond
		syncs := 0
		deadline := time.After(time.Until(testwait.Deadline(t)))
		ready := false
		var killed bool
		var kill <-chan time.Time
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(line)
				switch {
				case len(f) == 3 && f[0] == "op":
					addOp(f[1], f[2])
				case line == "ready":
					ready = true
					if syncsBeforeKill == 0 {
						kill = time.After(wait)
					}
				case line == "sync":
					if syncs++; syncs == syncsBeforeKill {
						kill = time.After(wait)
					}
				case strings.HasPrefix(line, "error"):
					t.Fatalf("child: %s", line)
				}
			case <-kill:
				if err := cmd.Process.Kill(); err != nil {
					t.Fatalf("kill: %v", err)
				}
				killed, kill = true, nil
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatal("the child did not finish in time")
			}
		}
		stdin.Close()
		_ = cmd.Wait()
		if !ready {
			t.Fatalf("kill %d: the child never got ready", k)
		}
		if killed {
			midSync++
		} else {
			finished++
		}

		// The file the kill left is a sound bbolt database.
		db, err := bolt.Open(filepath.Join(d.dir, localstore.FileName), 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("kill %d: open the local store: %v", k, err)
		}
		err = db.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
		db.Close()
		if err != nil {
			t.Fatalf("kill %d: bbolt check of the local store: %v", k, err)
		}
		// Reopened: ops the child committed but had no time to print are
		// in the outbox; every op is held or on the server.
		d.open(t)
		for _, op := range d.c.Ops() {
			addOp(op.OpID, "")
		}
		book.checkNotLost(t, ct, d)
		if u, ok := d.c.User(); !ok || u.Username != "a1" {
			// A kill right after the server rotated the refresh token
			// costs the session; the person signs in again.
			if _, err := d.c.Login(context.Background(), "a1", servertest.CityPassword); err != nil {
				t.Fatalf("login: %v", err)
			}
			book.relogins++
		}
		d.close()
		if t.Failed() {
			t.Fatalf("after kill %d", k)
		}
	}
	// Attempts the child made but never printed are found on the server
	// through their ops: ask each warning for attempts by unknown ops.
	d.open(t)
	book.cleanSync(t, d)
	book.cleanSync(t, d)
	logged := opsInLog(t, ct.srv)
	printed := map[string]bool{}
	for _, a := range book.attempts {
		printed[a] = true
	}
	for _, w := range ct.pullFresh(t, "a1").warnings {
		for _, a := range w.Attempts {
			if !printed[a.ID] {
				book.attempts = append(book.attempts, a.ID)
			}
		}
	}
	for id, es := range logged {
		if es[0].DeviceID == d.c.DeviceID() && !known[id] {
			t.Errorf("op %s is on the server but the child never made it known and the phone never held it", id)
		}
	}
	book.checkAll(t, ct, d)
	t.Logf("%d kills (%d mid-run, %d children finished first); %d ops, %d attempts; %d logins lost to a kill after a refresh",
		kills, midSync, finished, len(book.ops), len(book.attempts), book.relogins)
}
