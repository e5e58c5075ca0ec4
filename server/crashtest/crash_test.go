//go:build unix

package crashtest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/soak"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The test city is servertest.Township(numDevices): one county, one
// township, and a village per device with exactly one cadre, so the feed
// assigns each village's warnings to its cadre at once.
const (
	adminUsername = "admin"
	adminPassword = "crash-admin-password-1"

	numDevices         = 8
	warningsPerDevice  = 20
	minBatch, maxBatch = 5, 20

	// Every wait is bounded: a hung server fails the test instead of
	// hanging it.
	requestTimeout = 20 * time.Second
	startTimeout   = 30 * time.Second
	// maxPushesPerRound bounds a device's loop in one round; a round lasts
	// well under a second, so this is never reached by a working server.
	maxPushesPerRound = 10000
)

// Bucket names of server/store/store.go, read here straight from the file.
var (
	bucketLog     = []byte("log")
	bucketDevices = []byte("devices")
	bucketResults = []byte("results")
	// bucketWarnings holds each warning's state under its id, and beside
	// it (schema 8 on) its attempts, keyed by the id, attemptTag and a
	// 4-byte ordinal, its history and its latest entries, keyed by the
	// id, a 0x00 byte and tags of their own; the state holds no attempts.
	// Attempts are compact from schema 13 on, states from schema 14 on:
	// store.DecodeAttempt and store.DecodeState read either form.
	bucketWarnings = []byte("warnings")
)

// attemptTag starts, after a warning's id, the keys of its attempts.
var attemptTag = []byte{0x00, 'a'}

// TestCrash_KillDuringPush runs fieldsyncd as a child process, pushes from
// many devices at once, kills the server with SIGKILL at random moments
// (at least 20 times; 5 with -short), restarts it each time, and then checks
// the store file: every acknowledged op is in the log exactly once, no batch
// is half there, log seqs and each device's client_seqs have no gaps, each
// warning holds exactly the attempts logged for it, and bbolt's consistency
// check is clean.
//
// A device whose push failed in transport does not know whether the batch
// landed: like a phone, it sends the same batch again (same op ids, same
// client_seqs) after the restart, and accepts it as all applied or all
// duplicate. This is exactly-once across crashes.
func TestCrash_KillDuringPush(t *testing.T) {
	kills := soak.Scale(20)
	if testing.Short() {
		kills = 5
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASHTEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASHTEST_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (set CRASHTEST_SEED to repeat the random choices), %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))

	bin := servertest.BuildFieldsyncd(t)
	dataDir, logDir := t.TempDir(), t.TempDir()
	initStore(t, bin, dataDir)
	c := newCity(seed)

	start := time.Now()
	for round := range kills {
		roundStart := time.Now()
		ackedBefore, _, _, _ := c.totals()
		srv := startServer(t, bin, dataDir, logDir, round)
		started := time.Now()
		hc := newHTTPClient()
		if round == 0 {
			c.setup(t, srv.url, hc)
		}
		c.connect(srv.url, hc)
		c.loseAnswers(rng)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, d := range c.devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.pushUntilStopped(t, stop)
			}()
		}
		// Kill while the devices are pushing, then let them see it.
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		time.Sleep(delay)
		killErr := srv.Kill()
		close(stop)
		wg.Wait()
		hc.CloseIdleConnections()
		if killErr != nil {
			t.Fatalf("round %d: %v\n%s", round, killErr, srv.StderrTail())
		}
		logStderr(t, srv)
		if t.Failed() {
			t.FailNow()
		}
		// The file as the kill left it, before the restart repairs
		// anything: no batch may be half there even now.
		checked := time.Now()
		checkStore(t, filepath.Join(dataDir, store.DBFile), c, false)
		if t.Failed() {
			t.Fatalf("round %d: the store is wrong after the kill", round)
		}
		ackedAfter, _, _, _ := c.totals()
		t.Logf("round %2d: start %s, killed after %s, %4d ops acknowledged, check %s",
			round, started.Sub(roundStart).Round(time.Millisecond), delay, ackedAfter-ackedBefore, time.Since(checked).Round(time.Millisecond))
	}
	acked, unknown, landed, replays := c.totals()
	t.Logf("%d kills in %s: %d ops acknowledged; %d batches left unknown by a kill, %d of them had landed; %d acknowledged batches sent again",
		kills, time.Since(start).Round(time.Millisecond), acked, unknown, landed, replays)

	// The last restart: every device sends what it has to send again and
	// one new batch, then one device pulls, and the server stops cleanly.
	srv := startServer(t, bin, dataDir, logDir, kills)
	hc := newHTTPClient()
	c.connect(srv.url, hc)
	c.loseAnswers(rng)
	for _, d := range c.devices {
		for d.replay != nil || d.pending != nil {
			if err := d.pushOnce(); err != nil {
				t.Fatalf("%s: push after the last restart: %v", d.name, err)
			}
		}
		if err := d.pushOnce(); err != nil {
			t.Fatalf("%s: push after the last restart: %v", d.name, err)
		}
	}
	_, _, landed, _ = c.totals()
	t.Logf("after the last restart: %d of %d unknown batches had landed", landed, unknown)
	checkServer(t, c.devices[0])
	hc.CloseIdleConnections()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.StderrTail())
	}
	logStderr(t, srv)

	checkStore(t, filepath.Join(dataDir, store.DBFile), c, true)
}

// city is what the test knows of the server: its devices, and every batch
// each of them ever sent.
type city struct {
	town    *demo.Tree
	devices []*device
}

// device is one cadre's phone: its own client, client_seq counter, and the
// batch it does not yet know the fate of.
type device struct {
	name     string // username
	password string
	village  string
	id       string
	userID   string
	token    string
	warnings []string
	rng      *rand.Rand
	client   *remote.Client

	seq     uint64 // highest client_seq made
	batches []*batch
	// pending is a batch whose push failed in transport: it may or may not
	// have landed, so it goes again, unchanged, before anything new.
	pending *batch
	// replay is an acknowledged batch the device acts as if it never got
	// the answer for: it goes again first, and must be all duplicate.
	replay *batch
	// resends counts batches left unknown by a kill; landed counts those
	// the resend found already in the log (all duplicate); replays counts
	// acknowledged batches sent again as if the answer had been lost.
	resends, landed, replays int
}

// batch is one push request's ops.
type batch struct {
	ops []syncproto.Op
	// acked is set once a push of it got a 200 answer.
	acked bool
	sends int
}

func newCity(seed uint64) *city {
	c := &city{town: servertest.Township(numDevices)}
	for i, u := range c.town.Users {
		c.devices = append(c.devices, &device{
			name:     u.Username,
			password: u.Password,
			village:  u.Unit,
			id:       uuid.NewString(),
			rng:      rand.New(rand.NewPCG(seed, uint64(i+1))),
		})
	}
	return c
}

// setup creates the units and cadres as the admin, imports the warnings
// through the feed, and logs every device in.
func (c *city) setup(t *testing.T, url string, hc *http.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := remote.New(url)
	admin.HTTP = hc
	if _, err := admin.Login(ctx, syncproto.LoginRequest{
		Username: adminUsername, Password: adminPassword, DeviceID: uuid.NewString(), DeviceName: "crashtest admin", Platform: "test",
	}); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	servertest.Load(t, admin, c.town)
	warned := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	var rows []syncproto.FeedWarning
	for i, d := range c.devices {
		for j := range warningsPerDevice {
			rows = append(rows, servertest.FeedRow(fmt.Sprintf("CRASH-%d-%d", i, j), d.village, syncproto.RiskHigh, warned))
		}
	}
	resp, err := admin.ImportFeed(ctx, rows)
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	if len(resp.Created) != len(rows) {
		t.Fatalf("feed created %d of %d warnings: %+v", len(resp.Created), len(rows), resp)
	}
	for _, cr := range resp.Created {
		var i, j int
		if _, err := fmt.Sscanf(cr.ExternalID, "CRASH-%d-%d", &i, &j); err != nil || i < 0 || i >= len(c.devices) {
			t.Fatalf("feed answered external id %q", cr.ExternalID)
		}
		c.devices[i].warnings = append(c.devices[i].warnings, cr.ID)
	}
	for _, d := range c.devices {
		if len(d.warnings) != warningsPerDevice {
			t.Fatalf("%s has %d warnings, want %d", d.name, len(d.warnings), warningsPerDevice)
		}
	}
	for _, d := range c.devices {
		login, err := remote.New(url).Login(ctx, syncproto.LoginRequest{
			Username: d.name, Password: d.password, DeviceID: d.id, DeviceName: "crashtest " + d.name, Platform: "test",
		})
		if err != nil {
			t.Fatalf("login %s: %v", d.name, err)
		}
		d.token, d.userID = login.AccessToken, login.User.ID
	}
}

// connect points every device at the restarted server. Access tokens
// survive restarts: the signing keys are in the store.
func (c *city) connect(url string, hc *http.Client) {
	for _, d := range c.devices {
		d.client = remote.New(url)
		d.client.HTTP = hc
		d.client.SetToken(d.token)
	}
}

// loseAnswers makes about a quarter of the devices act as if the answer to
// their last acknowledged batch had been lost before the crash: they send it
// again after the restart and must be told it is all duplicate. A kill
// seldom falls between commit and answer, so this keeps exactly-once across
// restarts tested in every run.
func (c *city) loseAnswers(rng *rand.Rand) {
	for _, d := range c.devices {
		if d.replay != nil || rng.IntN(4) != 0 {
			continue
		}
		for _, b := range slices.Backward(d.batches) {
			if b.acked {
				d.replay = b
				d.replays++
				break
			}
		}
	}
}

func (c *city) totals() (acked, unknown, landed, replays int) {
	for _, d := range c.devices {
		for _, b := range d.batches {
			if b.acked {
				acked += len(b.ops)
			}
		}
		unknown += d.resends
		landed += d.landed
		replays += d.replays
	}
	return acked, unknown, landed, replays
}

// newHTTPClient is one round's transport, so no connection outlives the
// server it was made to.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: numDevices * 2, DisableCompression: true}}
}

// pushUntilStopped pushes batches until stop is closed or a push fails.
// A transport failure (the server was killed) leaves the batch pending for
// the next round; an error answer or a wrong result fails the test.
func (d *device) pushUntilStopped(t *testing.T, stop <-chan struct{}) {
	for range maxPushesPerRound {
		select {
		case <-stop:
			return
		default:
		}
		if err := d.pushOnce(); err != nil {
			var se *remote.StatusError
			if errors.As(err, &se) || !errors.Is(err, errTransport) {
				t.Errorf("%s: %v", d.name, err)
			}
			return
		}
	}
	t.Errorf("%s: pushed %d batches in one round without being stopped", d.name, maxPushesPerRound)
}

var errTransport = errors.New("transport failure")

// pushOnce sends the pending batch, or a new one, and checks the answer.
func (d *device) pushOnce() error {
	b, resend := d.replay, true
	if b == nil {
		b, resend = d.pending, d.pending != nil
	}
	if b == nil {
		b = d.newBatch()
		d.batches = append(d.batches, b)
	}
	b.sends++
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	resp, err := d.client.Push(ctx, syncproto.PushRequest{DeviceID: d.id, Ops: b.ops})
	cancel()
	if err != nil {
		// Either way the batch stays to be sent again. An error answer
		// applies nothing; it fails the test with what the server said.
		if b != d.replay {
			if !resend {
				d.resends++
			}
			d.pending = b
		}
		var se *remote.StatusError
		if errors.As(err, &se) {
			return fmt.Errorf("push of client_seq %d..%d: %w", b.ops[0].ClientSeq, b.ops[len(b.ops)-1].ClientSeq, err)
		}
		return fmt.Errorf("%w: %w", errTransport, err)
	}
	if err := checkPushResponse(b, resp, resend); err != nil {
		return err
	}
	if b == d.replay {
		d.replay = nil
		return nil
	}
	if resend && resp.Results[0].Status == syncproto.StatusDuplicate {
		d.landed++
	}
	b.acked = true
	d.pending = nil
	return nil
}

// newBatch makes 5 to 20 dissuasion.recorded ops, each a new attempt, on
// the device's warnings.
func (d *device) newBatch() *batch {
	outcomes := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeAlreadyDefrauded, syncproto.OutcomeNotTarget,
		syncproto.OutcomeUnreachable, syncproto.OutcomeRefused}
	methods := []string{syncproto.MethodVisit, syncproto.MethodPhone, syncproto.MethodVideo, syncproto.MethodOther}
	n := minBatch + d.rng.IntN(maxBatch-minBatch+1)
	b := &batch{ops: make([]syncproto.Op, n)}
	for i := range b.ops {
		d.seq++
		outcome := outcomes[d.rng.IntN(len(outcomes))]
		reached := outcome != syncproto.OutcomeUnreachable
		var loss int64
		if outcome == syncproto.OutcomeAlreadyDefrauded {
			loss = int64(1+d.rng.IntN(1000)) * 100
		}
		b.ops[i] = syncproto.Op{
			ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: d.seq, Type: syncproto.OpRecorded,
			WarningID: d.warnings[d.rng.IntN(len(d.warnings))], At: time.Now().UTC(),
			Body: syncproto.OpBody{
				AttemptID: uuid.NewString(), Method: methods[d.rng.IntN(len(methods))], Reached: &reached,
				Outcome: outcome, LossFen: loss, Notes: fmt.Sprintf("%s 第%d次劝阻", d.name, d.seq),
			},
		}
	}
	return b
}

// checkPushResponse checks a 200 answer: a result per op, in order; a new
// batch all applied; a batch sent again after a crash all applied (it never
// landed) or all duplicate (it did), never a mix; an acknowledged batch sent
// again all duplicate.
func checkPushResponse(b *batch, resp *syncproto.PushResponse, resend bool) error {
	if len(resp.Results) != len(b.ops) {
		return fmt.Errorf("push: %d results for %d ops", len(resp.Results), len(b.ops))
	}
	last := b.ops[len(b.ops)-1].ClientSeq
	// An acknowledged batch sent again may be followed by later ones.
	if resp.LastClientSeq != last && !(b.acked && resp.LastClientSeq > last) {
		return fmt.Errorf("push of client_seq %d..%d: last_client_seq = %d", b.ops[0].ClientSeq, last, resp.LastClientSeq)
	}
	first := resp.Results[0].Status
	for i, r := range resp.Results {
		op := &b.ops[i]
		if r.OpID != op.ID || r.ClientSeq != op.ClientSeq {
			return fmt.Errorf("result %d is for op %s client_seq %d, want %s %d", i, r.OpID, r.ClientSeq, op.ID, op.ClientSeq)
		}
		switch {
		case r.Status == syncproto.StatusApplied && !b.acked:
		case r.Status == syncproto.StatusDuplicate && resend:
		default:
			return fmt.Errorf("op client_seq %d (sent again %v, acknowledged before %v): status %s code %s: %s",
				op.ClientSeq, resend, b.acked, r.Status, r.Code, r.Message)
		}
		if r.Status != first {
			return fmt.Errorf("batch client_seq %d..%d sent again is half there: op %d is %s, op %d is %s",
				b.ops[0].ClientSeq, last, b.ops[0].ClientSeq, first, op.ClientSeq, r.Status)
		}
		if r.Version == 0 {
			return fmt.Errorf("op client_seq %d: %s without a version", op.ClientSeq, r.Status)
		}
	}
	return nil
}

// checkServer checks the restarted server answers health and a pull that
// holds each of d's warnings with every attempt d recorded on it.
func checkServer(t *testing.T, d *device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.client.Health(ctx); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	got := map[string]*syncproto.Warning{}
	cursor, last := "", uint64(0)
	for page := 0; ; page++ {
		if page == 100 {
			t.Fatal("pull never finished")
		}
		resp, err := d.client.Pull(ctx, syncproto.PullRequest{DeviceID: d.id, Cursor: cursor})
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if resp.Reset {
			clear(got)
		}
		for _, ch := range resp.Changes {
			if ch.Entity != syncproto.EntityWarning {
				t.Fatalf("a village cadre pulled a %s", ch.Entity)
			}
			if ch.Kind == syncproto.ChangeRemove {
				delete(got, ch.ID)
				continue
			}
			w, ok := ch.Data.(*syncproto.Warning)
			if !ok {
				t.Fatalf("warning %s: data is %T", ch.ID, ch.Data)
			}
			got[ch.ID] = w
		}
		cursor, last = resp.Cursor, resp.LastClientSeq
		if !resp.More {
			break
		}
	}
	if last != d.seq {
		t.Errorf("pull: last_client_seq = %d, want %d", last, d.seq)
	}
	want := d.attemptsByWarning()
	if len(got) != len(d.warnings) {
		t.Errorf("pull: %d warnings, want %d", len(got), len(d.warnings))
	}
	for _, id := range d.warnings {
		w, ok := got[id]
		if !ok {
			t.Errorf("pull: warning %s missing", id)
			continue
		}
		if w.Assignee != d.userID {
			t.Errorf("pull: warning %s assigned to %s, want %s", id, w.Assignee, d.userID)
		}
		ids := make([]string, len(w.Attempts))
		for i, a := range w.Attempts {
			ids[i] = a.ID
		}
		if diff := diffSets(ids, want[id]); diff != "" {
			t.Errorf("pull: warning %s attempts: %s", id, diff)
		}
	}
}

// attemptsByWarning is every attempt id the device ever sent, by warning.
func (d *device) attemptsByWarning() map[string][]string {
	m := map[string][]string{}
	for _, b := range d.batches {
		for _, op := range b.ops {
			m[op.WarningID] = append(m[op.WarningID], op.Body.AttemptID)
		}
	}
	return m
}

// checkStore opens the stopped server's bbolt file read-only and checks it
// against what the devices sent and were told. final says every batch was
// sent again after the last kill, so all must be there; otherwise a
// device's unknown batch may be there or not, but whole.
func checkStore(t *testing.T, path string, c *city, final bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	r := &reporter{t: t}
	err = db.View(func(tx *bolt.Tx) error {
		// (6) bbolt's own consistency check.
		for err := range tx.Check() {
			r.errorf("bbolt check: %v", err)
		}
		for _, name := range [][]byte{bucketLog, bucketDevices, bucketResults, bucketWarnings} {
			if tx.Bucket(name) == nil {
				t.Fatalf("bucket %s is missing", name)
			}
		}
		s := readLog(r, tx.Bucket(bucketLog))
		checkOps(r, c, s, final)
		checkDevices(r, c, s, tx.Bucket(bucketDevices), tx.Bucket(bucketResults))
		checkWarnings(r, c, s, tx.Bucket(bucketWarnings))
		if !final {
			return nil
		}
		t.Logf("log: %d entries, %d ops; %d distinct warnings touched", s.last, s.ops, len(s.attempts))
		return nil
	})
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
}

// logSummary is what the log says, gathered in one pass.
type logSummary struct {
	last uint64 // highest seq
	ops  int
	// opCount counts log entries by op id.
	opCount map[string]int
	// deviceOps lists each device's logged ops in log order.
	deviceOps map[string][]*syncproto.Op
	// attempts lists the attempts of applied dissuasion.recorded ops, by
	// warning; attemptDevice is the device each came from.
	attempts      map[string][]string
	attemptDevice map[string]string
	// lastChange is the seq of the last entry that changed each warning.
	lastChange map[string]uint64
}

// readLog walks the log: (3) keys are 1..N with no gap and the bucket's
// sequence is N.
func readLog(r *reporter, log *bolt.Bucket) *logSummary {
	s := &logSummary{opCount: map[string]int{}, deviceOps: map[string][]*syncproto.Op{},
		attempts: map[string][]string{}, attemptDevice: map[string]string{}, lastChange: map[string]uint64{}}
	want := uint64(1)
	cur := log.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if len(k) != 8 {
			r.errorf("log key %x is not a big-endian uint64", k)
			continue
		}
		seq := binary.BigEndian.Uint64(k)
		if seq != want {
			r.errorf("log seq %d follows %d: a gap", seq, want-1)
		}
		want, s.last = seq+1, seq
		var e store.LogEntry
		if err := store.DecodeLogEntry(v, &e); err != nil {
			r.errorf("log %d: %v", seq, err)
			continue
		}
		if e.Seq != seq {
			r.errorf("log %d holds an entry with seq %d", seq, e.Seq)
		}
		if e.Type == syncproto.OpCreated {
			s.lastChange[e.EntityID] = seq
		}
		if e.Op == nil {
			continue
		}
		s.ops++
		s.opCount[e.Op.ID]++
		s.deviceOps[e.DeviceID] = append(s.deviceOps[e.DeviceID], e.Op)
		if e.Result == nil || e.Result.OpID != e.Op.ID {
			r.errorf("log %d: op %s has result %+v", seq, e.Op.ID, e.Result)
			continue
		}
		if e.Result.Status != syncproto.StatusApplied {
			continue
		}
		if e.Result.Version == seq {
			s.lastChange[e.Op.WarningID] = seq
		}
		if e.Op.Type == syncproto.OpRecorded {
			s.attempts[e.Op.WarningID] = append(s.attempts[e.Op.WarningID], e.Op.Body.AttemptID)
			s.attemptDevice[e.Op.Body.AttemptID] = e.DeviceID
		}
	}
	if seq := log.Sequence(); seq != s.last {
		r.errorf("log bucket sequence = %d, last key = %d", seq, s.last)
	}
	return s
}

// checkOps checks (1) every acknowledged op is in the log exactly once and
// (2) no batch is half there; after the last resends, every batch ever sent
// is whole in the log, and the log holds no op the devices did not send.
func checkOps(r *reporter, c *city, s *logSummary, final bool) {
	sent := map[string]bool{}
	for _, d := range c.devices {
		for _, b := range d.batches {
			in := 0
			for _, op := range b.ops {
				sent[op.ID] = true
				switch n := s.opCount[op.ID]; {
				case n > 1:
					r.errorf("%s: op %s (client_seq %d) is in the log %d times", d.name, op.ID, op.ClientSeq, n)
				case n == 0 && b.acked:
					r.errorf("%s: acknowledged op %s (client_seq %d) is not in the log", d.name, op.ID, op.ClientSeq)
				}
				if s.opCount[op.ID] > 0 {
					in++
				}
			}
			switch {
			case in != 0 && in != len(b.ops):
				r.errorf("%s: batch client_seq %d..%d is half there: %d of %d ops in the log",
					d.name, b.ops[0].ClientSeq, b.ops[len(b.ops)-1].ClientSeq, in, len(b.ops))
			case in == 0 && (final || b != d.pending):
				r.errorf("%s: batch client_seq %d..%d (sent %d times, acknowledged %v) is not in the log",
					d.name, b.ops[0].ClientSeq, b.ops[len(b.ops)-1].ClientSeq, b.sends, b.acked)
			}
		}
	}
	for id := range s.opCount {
		if !sent[id] {
			r.errorf("the log holds op %s that no device sent", id)
		}
	}
}

// checkDevices checks (4): each device's last_client_seq is the highest
// client_seq it sent, its logged ops are client_seq 1..last in log order,
// each the op it sent with that client_seq, and the results bucket holds
// one result per client_seq for the same op.
func checkDevices(r *reporter, c *city, s *logSummary, devices, results *bolt.Bucket) {
	ours := map[string]*device{}
	for _, d := range c.devices {
		ours[d.id] = d
	}
	err := devices.ForEach(func(k, v []byte) error {
		var dev store.Device
		if err := decode(v, &dev); err != nil {
			r.errorf("device %s: %v", k, err)
			return nil
		}
		ops := s.deviceOps[dev.ID]
		for i, op := range ops {
			if op.ClientSeq != uint64(i+1) {
				r.errorf("device %s: logged op %d has client_seq %d, want %d (a gap or a repeat)", dev.ID, i, op.ClientSeq, i+1)
				break
			}
		}
		if uint64(len(ops)) != dev.LastClientSeq {
			r.errorf("device %s: last_client_seq = %d, but %d ops in the log", dev.ID, dev.LastClientSeq, len(ops))
		}
		nres := 0
		cur := results.Cursor()
		for rk, rv := cur.Seek(k); rk != nil && bytes.HasPrefix(rk, k) && len(rk) == len(k)+8; rk, rv = cur.Next() {
			nres++
			cs := binary.BigEndian.Uint64(rk[len(k):])
			var res syncproto.Result
			if err := store.DecodeResult(rv, cs, &res); err != nil {
				r.errorf("device %s result %d: %v", dev.ID, cs, err)
				continue
			}
			if cs < 1 || cs > uint64(len(ops)) || ops[cs-1].ID != res.OpID || res.ClientSeq != cs {
				r.errorf("device %s: result for client_seq %d is for op %s, not the logged one", dev.ID, cs, res.OpID)
			}
		}
		if uint64(nres) != dev.LastClientSeq {
			r.errorf("device %s: %d stored results, last_client_seq %d", dev.ID, nres, dev.LastClientSeq)
		}
		d := ours[dev.ID]
		if d == nil {
			return nil
		}
		delete(ours, dev.ID)
		if dev.UserID != d.userID {
			r.errorf("%s: device belongs to %s, want %s", d.name, dev.UserID, d.userID)
		}
		// Only the device's last batch, when a kill left it unknown, may
		// be missing.
		switch {
		case dev.LastClientSeq == d.seq:
		case d.pending != nil && dev.LastClientSeq == d.pending.ops[0].ClientSeq-1:
		default:
			r.errorf("%s: last_client_seq = %d, the device sent up to %d (unknown batch: %v)", d.name, dev.LastClientSeq, d.seq, d.pending != nil)
		}
		for _, b := range d.batches {
			for _, op := range b.ops {
				if op.ClientSeq <= uint64(len(ops)) && ops[op.ClientSeq-1].ID != op.ID {
					r.errorf("%s: client_seq %d is op %s in the log, the device sent %s", d.name, op.ClientSeq, ops[op.ClientSeq-1].ID, op.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		r.errorf("devices: %v", err)
	}
	for _, d := range ours {
		r.errorf("%s: device %s is not in the store", d.name, d.id)
	}
}

// checkWarnings checks (5): each warning holds exactly the attempts whose
// ops the log holds for it, none twice and none lost, each from the device
// that sent it, and its version is the seq of the last entry that changed it.
func checkWarnings(r *reporter, c *city, s *logSummary, warnings *bolt.Bucket) {
	// The attempts the devices sent in batches that landed.
	sent := map[string][]string{}
	for _, d := range c.devices {
		for _, b := range d.batches {
			for _, op := range b.ops {
				if s.opCount[op.ID] > 0 {
					sent[op.WarningID] = append(sent[op.WarningID], op.Body.AttemptID)
				}
			}
		}
	}
	seen := map[string]bool{}
	err := warnings.ForEach(func(k, v []byte) error {
		if bytes.IndexByte(k, 0x00) >= 0 {
			return nil // one of a warning's records beside its state
		}
		var w syncproto.Warning
		if err := store.DecodeState(v, &w); err != nil {
			r.errorf("warning %s: %v", k, err)
			return nil
		}
		seen[w.ID] = true
		w.Attempts = append(w.Attempts, storedAttempts(r, warnings, w.ID)...)
		ids := make([]string, len(w.Attempts))
		for i, a := range w.Attempts {
			ids[i] = a.ID
			if dev := s.attemptDevice[a.ID]; dev != a.DeviceID {
				r.errorf("warning %s: attempt %s from device %s, logged from %s", w.ID, a.ID, a.DeviceID, dev)
			}
		}
		if diff := diffSets(ids, s.attempts[w.ID]); diff != "" {
			r.errorf("warning %s against the log: %s", w.ID, diff)
		}
		if diff := diffSets(ids, sent[w.ID]); diff != "" {
			r.errorf("warning %s against what devices sent: %s", w.ID, diff)
		}
		if w.Version != s.lastChange[w.ID] {
			r.errorf("warning %s: version %d, last logged change %d", w.ID, w.Version, s.lastChange[w.ID])
		}
		return nil
	})
	if err != nil {
		r.errorf("warnings: %v", err)
	}
	for id := range s.attempts {
		if !seen[id] {
			r.errorf("the log records attempts on warning %s, which is not in the store", id)
		}
	}
	if want := numDevices * warningsPerDevice; len(seen) != want {
		r.errorf("%d warnings in the store, want %d", len(seen), want)
	}
}

// storedAttempts reads the attempt records of warning id, in order.
func storedAttempts(r *reporter, warnings *bolt.Bucket, id string) []syncproto.Attempt {
	var out []syncproto.Attempt
	prefix := append([]byte(id), attemptTag...)
	c := warnings.Cursor()
	for k, v := c.Seek(prefix); k != nil && len(k) == len(prefix)+4 && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var a syncproto.Attempt
		if err := store.DecodeAttempt(v, &a); err != nil {
			r.errorf("warning %s: attempt %x: %v", id, k[len(prefix):], err)
			continue
		}
		out = append(out, a)
	}
	return out
}

// diffSets says how got differs from want as multisets: repeats in got,
// ids missing from got, ids got has that want lacks; "" when equal.
func diffSets(got, want []string) string {
	var out []string
	count := map[string]int{}
	for _, id := range got {
		count[id]++
		if count[id] == 2 {
			out = append(out, "twice: "+id)
		}
	}
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		if count[id] == 0 {
			out = append(out, "missing: "+id)
		}
	}
	for id := range count {
		if !wanted[id] {
			out = append(out, "unexpected: "+id)
		}
	}
	slices.Sort(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, ", ")
}

// reporter caps the errors one broken invariant can produce.
type reporter struct {
	t *testing.T
	n int
}

func (r *reporter) errorf(format string, args ...any) {
	r.t.Helper()
	r.n++
	switch {
	case r.n <= 30:
		r.t.Errorf(format, args...)
	case r.n == 31:
		r.t.Error("more errors not shown")
	}
}

// decode reads a store value: MessagePack with the JSON field names.
func decode(data []byte, v any) error {
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// initStore runs fieldsyncd init with the admin password in a file.
func initStore(t *testing.T, bin, dataDir string) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "admin-password")
	if err := os.WriteFile(pw, []byte(adminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "init", "--data", dataDir, "--admin-password-file", pw).CombinedOutput()
	if err != nil {
		t.Fatalf("fieldsyncd init: %v\n%s", err, out)
	}
	if strings.Contains(string(out), adminPassword) {
		t.Fatalf("fieldsyncd init printed the admin password from the file:\n%s", out)
	}
}

// child is a running fieldsyncd serve and its address.
type child struct {
	*servertest.Child
	url string
}

// startServer starts fieldsyncd serve on 127.0.0.1:0 and waits for its
// "listening on" line. The process is killed when the test ends, whatever
// happens.
func startServer(t *testing.T, bin, dataDir, logDir string, round int) *child {
	t.Helper()
	c := &child{Child: servertest.StartChild(t, bin, []string{"serve", "--data", dataDir, "--addr", "127.0.0.1:0", "--log-level", "error"},
		filepath.Join(logDir, fmt.Sprintf("serve-%02d.stderr", round)))}
	url, err := c.WaitURL(startTimeout)
	if err != nil {
		t.Fatalf("round %d: %v\n%s", round, err, c.StderrTail())
	}
	c.url = url
	return c
}

// logStderr shows what a server logged at level error: nothing, normally.
func logStderr(t *testing.T, c *child) {
	t.Helper()
	if s := c.StderrTail(); s != "" {
		t.Logf("fieldsyncd stderr (%s):\n%s", filepath.Base(c.StderrPath()), s)
	}
}
