package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cityload"
	"github.com/fieldsync/fieldsync/examples/internal/localserver"
	"github.com/fieldsync/fieldsync/examples/internal/workpool"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// device is one phone: a logged-in client of a village cadre, the warnings
// assigned to it, its next client_seq and its cursor.
type device struct {
	c        *remote.Client
	id       string
	username string
	userID   string
	unit     string
	warnings []string
	seq      uint64
	next     int
	cursor   string
	// held is what the phone keeps of its scope with -have; nil without.
	held *heldStates
}

// env is the running server, its demo city and the phones.
type env struct {
	cfg     *config
	srv     *localserver.Server
	stop    func() error // ends srv and what it runs on
	hc      *http.Client
	tr      *http.Transport
	tree    *demo.Tree
	admin   *device
	devices []*device
	timings *serverTimings
	feedN   int
	// probe is the device whose no-change pulls are timed: one whose
	// village has a single cadre, so the feed assigns it warnings at once.
	probe *device
	// early is the probe's no-change pull timed when the log first held
	// about 10,000 ops, part way through the setup.
	early *pullPoint
}

// earlyLog is the log size at which setup times a no-change pull.
const earlyLog = 10_000

// setup starts a server (under basePath when it is set, as a city behind
// a province's proxy) and loads the demo city and cfg.devices phones.
func setup(ctx context.Context, cfg *config, basePath string, stderr io.Writer) (*env, error) {
	timings := &serverTimings{errors: stderr}
	srv, err := startServer(cfg, servertest.Options{Dir: cfg.dir, NoSync: cfg.noSync, BasePath: basePath}, timings)
	if err != nil {
		return nil, err
	}
	return setupOn(ctx, cfg, srv, srv.Close, timings, stderr)
}

// startServer starts a server as the load program wants it: opts with
// the request limits off and timings as its logger.
func startServer(cfg *config, opts servertest.Options, timings *serverTimings) (*localserver.Server, error) {
	// The load program measures the server, not its request limits: its
	// phones each push far faster than a real one. Every phone shares one
	// transport that keeps a connection per phone alive, as phones each
	// keep their own.
	opts.Logger, opts.RateLimit = slog.New(timings), httpapi.RateLimit{Disabled: true}
	return localserver.Start(localserver.Options{
		Name:               "load",
		Server:             opts,
		Conns:              max(256, 2*cfg.devices),
		DisableCompression: !cfg.gzip,
	})
}

// setupOn loads the demo city and cfg.devices phones into srv. stop ends
// srv and what it runs on (env.close, or a failed setup, calls it).
func setupOn(ctx context.Context, cfg *config, srv *localserver.Server, stop func() error, timings *serverTimings, stderr io.Writer) (*env, error) {
	start := time.Now()
	stage := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(stderr, "setup: (%v) ", time.Since(stage).Round(time.Millisecond))
		fmt.Fprintf(stderr, format, args...)
		stage = time.Now()
	}
	var err error
	tr := srv.Transport
	e := &env{cfg: cfg, srv: srv, stop: stop, tr: tr, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}, timings: timings, tree: demo.City(cfg.seed)}
	fail := func(err error) (*env, error) {
		e.close()
		return nil, err
	}
	if e.admin, err = e.login(ctx, app.AdminUsername, servertest.AdminPassword); err != nil {
		return fail(fmt.Errorf("admin login: %w", err))
	}
	if _, err := e.admin.c.UpsertUnits(ctx, e.tree.Units[1:]); err != nil {
		return fail(fmt.Errorf("demo units: %w", err))
	}
	step("%d units of the demo city; creating users ...\n", len(e.tree.Units))
	cadres := e.cadres()
	userIDs, err := e.upsertUsers(ctx, append(nonVillageUsers(e.tree), cadres...))
	if err != nil {
		return fail(err)
	}
	perVillage := map[string]int{}
	for _, u := range cadres {
		perVillage[u.Unit]++
	}

	step("logging in %d devices ...\n", cfg.devices)
	e.devices = make([]*device, cfg.devices)
	err = workpool.Run(8, cfg.devices, func(i int) error {
		u := cadres[i]
		d, err := e.login(ctx, u.Username, u.Password)
		if err != nil {
			return fmt.Errorf("login %s: %w", u.Username, err)
		}
		d.userID, d.unit = userIDs[u.Username], u.Unit
		if cfg.have {
			d.held = newHeldStates()
		}
		e.devices[i] = d
		return nil
	})
	if err != nil {
		return fail(err)
	}

	step("importing %d warnings (%d per device) ...\n", cfg.devices*cfg.warningsPerDevice, cfg.warningsPerDevice)
	owners := make([]*device, 0, cfg.devices*cfg.warningsPerDevice)
	for range cfg.warningsPerDevice {
		owners = append(owners, e.devices...)
	}
	for _, d := range e.devices {
		if perVillage[d.unit] == 1 {
			e.probe = d
			break
		}
	}
	if e.probe == nil {
		e.probe = e.devices[0]
	}
	// Import up to a log of about 10,000 ops, time a no-change pull there,
	// then import the rest.
	seq, err := srv.Store.LastSeq()
	if err != nil {
		return fail(err)
	}
	first := min(len(owners), max(0, earlyLog-int(seq)))
	ids, err := e.importFeed(ctx, func(i int) string { return owners[i].unit }, first)
	if err != nil {
		return fail(err)
	}
	if e.early, err = e.pullPoint(ctx, "during setup"); err != nil {
		return fail(err)
	}
	rest, err := e.importFeed(ctx, func(i int) string { return owners[first+i].unit }, len(owners)-first)
	if err != nil {
		return fail(err)
	}
	ids = append(ids, rest...)
	var assign []syncproto.Op
	for i, id := range ids {
		d := owners[i]
		d.warnings = append(d.warnings, id)
		// A village with one cadre gets its warnings assigned by the
		// feed; with more, a lead assigns them.
		if perVillage[d.unit] > 1 {
			assign = append(assign, syncproto.Op{
				ID: uuid.NewString(), ClientSeq: e.admin.nextSeq(), Type: syncproto.OpAssigned, WarningID: id,
				At: time.Now(), Body: syncproto.OpBody{Assignee: d.userID},
			})
		}
	}
	step("assigning %d warnings in villages with several cadres ...\n", len(assign))
	for len(assign) > 0 {
		n := min(len(assign), syncproto.MaxPushOps)
		if err := whileUnavailable(ctx, func() error { return e.admin.pushAll(ctx, assign[:n]) }); err != nil {
			return fail(fmt.Errorf("assign warnings: %w", err))
		}
		assign = assign[n:]
	}

	step("first sync of every device ...\n")
	err = workpool.Run(8, cfg.devices, func(i int) error {
		d := e.devices[i]
		changes, err := d.pullToHead(ctx, "")
		if err != nil {
			return fmt.Errorf("first pull of %s: %w", d.username, err)
		}
		if changes != len(d.warnings) {
			return fmt.Errorf("%s pulled %d changes, want its %d warnings", d.username, changes, len(d.warnings))
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if seq, err = srv.Store.LastSeq(); err != nil {
		return fail(err)
	}
	step("done in %v; log at %d ops\n", time.Since(start).Round(time.Millisecond), seq)
	return e, nil
}

func (e *env) close() {
	if err := e.stop(); err != nil {
		fmt.Fprintln(e.timings.errors, err)
	}
}

// login signs username in from a new device.
func (e *env) login(ctx context.Context, username, password string) (*device, error) {
	c := remote.New(e.srv.URL)
	c.HTTP = e.hc
	d := &device{c: c, id: uuid.NewString(), username: username}
	resp, err := c.Login(ctx, syncproto.LoginRequest{Username: username, Password: password, DeviceID: d.id, DeviceName: "load " + username, Platform: "load"})
	if err != nil {
		return nil, err
	}
	d.userID = resp.User.ID
	return d, nil
}

// cadres returns one village user per device: the demo city's cadres in
// tree order, then, when more devices are wanted than the city has cadres,
// extra cadres in the villages that already have two, so that villages
// with a single cadre keep getting their warnings assigned by the feed.
func (e *env) cadres() []syncproto.UserInput {
	var out []syncproto.UserInput
	for _, u := range e.tree.Users {
		if syncproto.UnitLevel(u.Unit) == syncproto.RoleVillage {
			out = append(out, u)
		}
	}
	if len(out) >= e.cfg.devices {
		return out[:e.cfg.devices]
	}
	var shared []string
	for _, v := range e.tree.Villages() {
		if len(e.tree.UsersAt(v)) > 1 {
			shared = append(shared, v)
		}
	}
	if len(shared) == 0 {
		shared = e.tree.Villages()
	}
	next := map[string]int{}
	for i := 0; len(out) < e.cfg.devices; i++ {
		v := shared[i%len(shared)]
		if next[v] == 0 {
			next[v] = len(e.tree.UsersAt(v)) + 1
		}
		out = append(out, syncproto.UserInput{
			Username: demo.CadreUsername(v, next[v]), Password: demo.VillagePassword,
			Name: fmt.Sprintf("压测%d号", i+1), Unit: v,
		})
		next[v]++
	}
	return out
}

func nonVillageUsers(t *demo.Tree) []syncproto.UserInput {
	var out []syncproto.UserInput
	for _, u := range t.Users {
		if syncproto.UnitLevel(u.Unit) != syncproto.RoleVillage {
			out = append(out, u)
		}
	}
	return out
}

// upsertUsers creates users through the admin API and returns their ids
// by username.
func (e *env) upsertUsers(ctx context.Context, users []syncproto.UserInput) (map[string]string, error) {
	return cityload.UpsertUsers(ctx, e.admin.c, users)
}

// importFeed imports n new demo warnings, the i-th into unit(i), and
// returns their ids in order.
func (e *env) importFeed(ctx context.Context, unit func(i int) string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	day := time.Now().Add(-24 * time.Hour)
	for start := 0; start < n; start += cityload.FeedChunk {
		k := min(cityload.FeedChunk, n-start)
		rows := demo.Warnings(e.tree, day, k, e.cfg.seed+int64(e.feedN))
		for i := range rows {
			rows[i].Unit = unit(start + i)
			rows[i].ExternalID = fmt.Sprintf("LOAD-%08d", e.feedN+i)
		}
		var created []string
		err := whileUnavailable(ctx, func() (err error) {
			created, err = cityload.ImportFeed(ctx, e.admin.c, rows)
			return err
		})
		if err != nil {
			return nil, err
		}
		ids = append(ids, created...)
		e.feedN += k
	}
	return ids, nil
}

func (d *device) nextSeq() uint64 {
	d.seq++
	return d.seq
}

// pushAll pushes ops and fails unless every one was applied, by this try
// or an earlier one.
func (d *device) pushAll(ctx context.Context, ops []syncproto.Op) error {
	resp, err := d.c.Push(ctx, syncproto.PushRequest{DeviceID: d.id, Ops: ops})
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		// A duplicate was applied by an earlier try whose answer was lost.
		if r.Status != syncproto.StatusApplied && r.Status != syncproto.StatusDuplicate {
			return fmt.Errorf("op %d: %s %s: %s", r.ClientSeq, r.Status, r.Code, r.Message)
		}
	}
	return nil
}

// pullToHead pulls from cursor until more is false, keeps the cursor, and
// returns how many changes came.
func (d *device) pullToHead(ctx context.Context, cursor string) (int, error) {
	n := 0
	for range 100_000 {
		resp, err := d.c.Pull(ctx, syncproto.PullRequest{DeviceID: d.id, Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			return n, err
		}
		n += len(resp.Changes)
		if err := d.applyPage(resp); err != nil {
			return n, err
		}
		cursor = resp.Cursor
		if !resp.More {
			d.cursor = cursor
			return n, nil
		}
	}
	return n, errors.New("pull never reached the head")
}

var loadNotes = []string{
	"电话联系本人，已告知刷单返利均为诈骗，本人表示理解并卸载了相关APP。",
	"上门走访未见本人，家属称其外出务工，已留联系方式并嘱咐家属转告。",
	"视频通话，本人正在向所谓投资导师转账，经劝阻已停止操作并报警。",
	"电话无人接听，短信已发送预警提示，明日再次上门。",
}

var loadOutcomes = []struct {
	outcome, method string
	reached         bool
}{
	{syncproto.OutcomeUnreachable, syncproto.MethodPhone, false},
	{syncproto.OutcomeRefused, syncproto.MethodVisit, true},
	{syncproto.OutcomeDissuaded, syncproto.MethodVisit, true},
	{syncproto.OutcomeDissuaded, syncproto.MethodVideo, true},
}

// recordOps makes n dissuasion attempts on d's warnings in turn, as a cadre
// records them offline.
func (d *device) recordOps(n int) []syncproto.Op {
	ops := make([]syncproto.Op, n)
	now := time.Now()
	for i := range ops {
		o := loadOutcomes[int(d.seq)%len(loadOutcomes)]
		reached := o.reached
		id := d.warnings[d.next%len(d.warnings)]
		ops[i] = syncproto.Op{
			ID: uuid.NewString(), ClientSeq: d.nextSeq(), Type: syncproto.OpRecorded,
			WarningID: id, BaseVersion: d.baseVersion(id), At: now,
			Body: syncproto.OpBody{
				AttemptID: uuid.NewString(), Method: o.method, Reached: &reached, Outcome: o.outcome,
				Notes:    loadNotes[int(d.seq)%len(loadNotes)],
				Location: &syncproto.Location{Lat: 34.0 + float64(d.seq%1000)/10_000, Lng: 113.8 + float64(d.seq%997)/10_000, Accuracy: 15},
			},
		}
		d.next++
	}
	return ops
}

// serverTimings is the server's logger. It prints warnings and errors and,
// while capture is on, keeps the time the server spent on each pull (the
// "ms" of its request log line: from the first middleware to the response
// written, so authentication, decoding, the store and encoding, but not
// the network or HTTP parsing). Off capture, info lines cost nothing.
type serverTimings struct {
	errors  io.Writer
	capture atomic.Bool
	mu      sync.Mutex
	pulls   []time.Duration
	printed atomic.Int64
}

var _ slog.Handler = (*serverTimings)(nil)

func (h *serverTimings) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.capture.Load()
}

func (h *serverTimings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		if h.printed.Add(1) <= 10 {
			fmt.Fprintf(h.errors, "server %s: %s", r.Level, r.Message)
			r.Attrs(func(a slog.Attr) bool {
				fmt.Fprintf(h.errors, " %s=%v", a.Key, a.Value)
				return true
			})
			fmt.Fprintln(h.errors)
		}
		return nil
	}
	var route string
	var ms float64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "route":
			route = a.Value.String()
		case "ms":
			if a.Value.Kind() == slog.KindFloat64 {
				ms = a.Value.Float64()
			}
		}
		return true
	})
	if route == "/v1/sync/pull" {
		h.mu.Lock()
		h.pulls = append(h.pulls, time.Duration(ms*float64(time.Millisecond)))
		h.mu.Unlock()
	}
	return nil
}

func (h *serverTimings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *serverTimings) WithGroup(string) slog.Handler      { return h }

// start begins keeping pull times; stop ends it and returns them.
func (h *serverTimings) start() {
	h.mu.Lock()
	h.pulls = nil
	h.mu.Unlock()
	h.capture.Store(true)
}

func (h *serverTimings) stop() []time.Duration {
	h.capture.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pulls
}

// whileUnavailable runs fn again while it fails with 503 unavailable (a
// node of a cluster without a quorum for a moment: an election on a
// machine too busy for raft's heartbeats), after the Retry-After the
// server gave, as a phone's SDK does; at most 20 times.
func whileUnavailable(ctx context.Context, fn func() error) error {
	for try := 1; ; try++ {
		err := fn()
		var perr *syncproto.Error
		if err == nil || try == 20 || !errors.As(err, &perr) || perr.Code != syncproto.CodeUnavailable {
			return err
		}
		wait, ok := perr.DetailSeconds("retry_after")
		if !ok {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
