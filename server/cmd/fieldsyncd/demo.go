package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address HOST:PORT; port 0 picks one")
	n := fs.Int("warnings", 400, "warnings in today's feed")
	seed := fs.Int64("seed", 1, "seed of the demo city's names and feed")
	keep := fs.String("data", "", "keep the demo store in this directory instead of a temporary one")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	metricsOpen := fs.Bool("metrics-open", false, "serve GET /metrics, which has no token in the demo, on an address other machines reach")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*metricsOpen && !isLoopback(*addr) {
		return fmt.Errorf("--addr %s is reachable from other machines, and the demo's GET /metrics has no token: "+
			"give --metrics-open to serve it to them on purpose", *addr)
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fieldsync-demo-*"); err != nil {
			return fmt.Errorf("temporary store: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	m := metrics.New(metrics.Options{})
	st, err := store.Open(dir, store.Options{Create: true, OnCommit: m.ObserveCommit})
	if err != nil {
		return err
	}
	defer st.Close()
	adminPassword := randomPassword()
	city, err := loadDemoCity(ctx, st, adminPassword, *n, *seed)
	if err != nil {
		return fmt.Errorf("load demo city: %w", err)
	}
	return serve(ctx, st, serveParams{Addr: *addr, HTTP: httpapi.Config{Logger: logger, Metrics: m}, Ready: func(url string) {
		printLogins(stdout, url, city, adminPassword)
	}}, stdout)
}

// loadDemoCity fills a new store with the demo city, today's feed so far, and
// a morning's work: cadres' attempts and leads' reviews.
func loadDemoCity(ctx context.Context, st *store.Store, adminPassword string, n int, seed int64) (*demo.Tree, error) {
	tree := demo.City(seed)
	if err := app.Bootstrap(ctx, st, demo.CityCode, demo.CityName, adminPassword); err != nil {
		return nil, err
	}
	admin, err := st.UserByUsername(app.AdminUsername)
	if err != nil {
		return nil, err
	}
	root := admin.Actor("")
	if _, err := st.UpsertUnits(ctx, root, tree.Units[1:]); err != nil {
		return nil, err
	}
	// Every demo user of a role shares its password: hash each once.
	hashes := map[string]string{}
	updates := make([]store.UserUpdate, len(tree.Users))
	for i, u := range tree.Users {
		h, ok := hashes[u.Password]
		if !ok {
			var err error
			if h, err = auth.HashPassword(u.Password); err != nil {
				return nil, err
			}
			hashes[u.Password] = h
		}
		updates[i] = store.UserUpdate{Username: u.Username, Name: u.Name, Unit: u.Unit, Admin: u.Admin, PasswordHash: h}
	}
	users, err := st.UpsertUsers(ctx, root, updates)
	if err != nil {
		return nil, err
	}
	byID := map[string]*store.User{}
	var center *store.User
	for i := range users {
		byID[users[i].ID] = &users[i]
		if users[i].Username == demo.CenterUsername {
			center = &users[i]
		}
	}
	if center == nil {
		return nil, errors.New("the demo city has no center user")
	}
	rows := demo.Warnings(tree, time.Now(), n, seed)
	feed := make([]store.FeedRow, len(rows))
	for i, w := range rows {
		feed[i] = store.FeedRow{Num: i + 1, Warning: w}
	}
	created, err := st.ImportFeed(ctx, center.Actor(""), feed)
	if err != nil {
		return nil, err
	}
	if len(created.Invalid) > 0 {
		return nil, fmt.Errorf("demo feed row %d: %s", created.Invalid[0].Row, created.Invalid[0].Message)
	}
	return tree, simulateMorning(ctx, st, created.Created, byID, seed)
}

// simulateMorning has cadres record attempts on about half of what was
// assigned to them, and leads approve some of the resolved work, so the
// demo opens on a day in progress.
func simulateMorning(ctx context.Context, st *store.Store, created []syncproto.FeedCreated, users map[string]*store.User, seed int64) error {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	devices := map[string]*demoDevice{}
	device := func(u *store.User) (*demoDevice, error) {
		if d, ok := devices[u.ID]; ok {
			return d, nil
		}
		_, hash, err := auth.NewRefreshToken()
		if err != nil {
			return nil, err
		}
		d := &demoDevice{actor: u.Actor(uuid.NewString())}
		if _, err := st.Login(ctx, u, store.SignIn{DeviceID: d.actor.DeviceID, Name: "演示手机", Platform: "demo", RefreshHash: hash, RefreshTTL: time.Hour}); err != nil {
			return nil, err
		}
		devices[u.ID] = d
		return d, nil
	}
	outcomes := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeDissuaded, syncproto.OutcomeDissuaded,
		syncproto.OutcomeNotTarget, syncproto.OutcomeUnreachable, syncproto.OutcomeRefused, syncproto.OutcomeAlreadyDefrauded}
	methods := []string{syncproto.MethodVisit, syncproto.MethodPhone, syncproto.MethodPhone, syncproto.MethodVideo}
	for _, c := range created {
		w, err := st.Warning(c.ID)
		if err != nil {
			return err
		}
		cadre := users[w.Assignee]
		if cadre == nil || r.Float64() > 0.5 {
			continue
		}
		d, err := device(cadre)
		if err != nil {
			return err
		}
		outcome := outcomes[r.IntN(len(outcomes))]
		reached := outcome != syncproto.OutcomeUnreachable
		var loss int64
		if outcome == syncproto.OutcomeAlreadyDefrauded {
			loss = int64(r.IntN(50000)+500) * 100
		}
		at := w.WarnedAt.Add(time.Duration(10+r.IntN(120)) * time.Minute)
		if now := time.Now(); at.After(now) {
			at = now
		}
		res, err := d.push(ctx, st, syncproto.Op{Type: syncproto.OpRecorded, WarningID: w.ID, At: at, Body: syncproto.OpBody{
			AttemptID: uuid.NewString(), Method: methods[r.IntN(len(methods))], Reached: &reached,
			Outcome: outcome, LossFen: loss, Notes: "已告知对方此为诈骗，对方表示理解",
		}})
		if err != nil {
			return err
		}
		if !syncproto.Conclusive(outcome) || r.Float64() > 0.5 {
			continue
		}
		lead := users[leadOf(users, w.Unit)]
		if lead == nil {
			continue
		}
		ld, err := device(lead)
		if err != nil {
			return err
		}
		if _, err := ld.push(ctx, st, syncproto.Op{Type: syncproto.OpReviewed, WarningID: w.ID, BaseVersion: res.Version, At: at.Add(30 * time.Minute),
			Body: syncproto.OpBody{Decision: syncproto.DecisionApprove, Comment: "核实无误"}}); err != nil {
			return err
		}
	}
	return nil
}

type demoDevice struct {
	actor syncproto.Actor
	seq   uint64
}

func (d *demoDevice) push(ctx context.Context, st *store.Store, op syncproto.Op) (syncproto.Result, error) {
	d.seq++
	op.ID, op.ClientSeq = uuid.Must(uuid.NewV7()).String(), d.seq
	if op.At.After(time.Now()) {
		op.At = time.Now()
	}
	resp, err := st.Push(ctx, d.actor, []syncproto.Op{op})
	if err != nil {
		return syncproto.Result{}, err
	}
	return resp.Results[0], nil
}

// leadOf finds the township lead above a village.
func leadOf(users map[string]*store.User, village string) string {
	township := syncproto.ParentCode(village)
	for id, u := range users {
		if u.Unit == township && u.Role == syncproto.RoleTownship {
			return id
		}
	}
	return ""
}

func printLogins(w io.Writer, url string, tree *demo.Tree, adminPassword string) {
	township := tree.Townships()[0]
	village := ""
	for _, v := range tree.Villages() {
		if syncproto.ParentCode(v) == township {
			village = v
			break
		}
	}
	fmt.Fprintf(w, `
fieldsync demo (%d units, %d users)

  console    %s/console/
             open it in a browser; leads, the county and the center sign in there
  API        %s/v1/  (phones and the SDK; docs/PROTOCOL.md)

  role       username                    password
  admin      %-27s %s
  center     %-27s %s
  county     %-27s %s
  township   %-27s %s
  village    %-27s %s

Every county, township and village user follows the same pattern
(county-<code>, lead-<code>, cadre-<code>-1); the store is deleted on exit.
Try: curl %s/v1/healthz
`, len(tree.Units), len(tree.Users), url, url,
		app.AdminUsername, adminPassword,
		demo.CenterUsername, demo.CenterPassword,
		demo.CountyUsername(syncproto.ParentCode(township)), demo.CountyPassword,
		demo.LeadUsername(township), demo.TownshipPassword,
		demo.CadreUsername(village, 1), demo.VillagePassword,
		url)
}
