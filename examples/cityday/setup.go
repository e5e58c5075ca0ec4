package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/localserver"
	"github.com/fieldsync/fieldsync/examples/internal/workpool"

	"github.com/google/uuid"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// sim is the running city: the server, the people and their devices, and
// the simulation's own count.
type sim struct {
	cfg    *config
	stderr io.Writer
	srv    *localserver.Server
	tree   *demo.Tree
	// day is the feed's day in Beijing time, YYYY-MM-DD.
	day string
	// userIDs maps usernames to user ids; usernames maps back.
	userIDs   map[string]string
	usernames map[string]string
	// cadres counts the cadres of each village.
	cadres map[string]int
	// center speaks to the server as the center user, over plain HTTP.
	center *remote.Client
	// centerSDK is the center's own SDK client, synced at the end to hold
	// every warning of the city.
	centerSDK *actor
	leads     []*actor
	phones    []*actor
	ledger    *ledger
	rounds    int
	timing    struct {
		setup, day  time.Duration
		settleStart time.Time
	}
}

// actor is one person's device: a phone of a village cadre or a lead's.
type actor struct {
	username string
	role     string
	unit     string
	userID   string
	sdk      *clientsdk.Client
	radio    *radio
	rng      *mrand.Rand
	// tracked are the ops this device made that have not yet left its
	// outbox, in client_seq order.
	tracked []trackedOp
	// offTurns is how many more turns the phone stays without signal.
	offTurns int
	// counters for the report
	turns, syncs, syncFailures, offlinePeriods int
}

// radio is a phone's network: a switch that makes every request fail as if
// there were no signal, and one that lets the next sync request reach the
// server but loses its answer.
type radio struct {
	base      http.RoundTripper
	offline   atomic.Bool
	loseReply atomic.Bool
	refused   atomic.Int64
	lost      atomic.Int64
}

var (
	errNoSignal   = errors.New("no signal")
	errSignalLost = errors.New("signal lost before the answer came")
)

// RoundTrip implements http.RoundTripper.
func (r *radio) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.offline.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		r.refused.Add(1)
		return nil, errNoSignal
	}
	resp, err := r.base.RoundTrip(req)
	// Only sync answers are lost: a lost refresh answer would spend the
	// refresh token, which is another story than this day's.
	if err == nil && (req.URL.Path == "/v1/sync/push" || req.URL.Path == "/v1/sync/pull") && r.loseReply.CompareAndSwap(true, false) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.offline.Store(true)
		r.lost.Add(1)
		return nil, errSignalLost
	}
	return resp, err
}

// feedChunk keeps one feed request well under the 1 MiB body limit.
const feedChunk = 1000

func setup(ctx context.Context, cfg *config, stderr io.Writer) (s *sim, err error) {
	start := time.Now()
	s = &sim{cfg: cfg, stderr: stderr, tree: demo.City(cfg.seed), userIDs: map[string]string{}, usernames: map[string]string{}, cadres: map[string]int{}}
	s.ledger = newLedger()
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	// One transport for everyone, with a connection per busy device kept
	// alive.
	if s.srv, err = localserver.Start(localserver.Options{Name: "cityday", Conns: 2 * cfg.workers}); err != nil {
		return s, err
	}

	// The city through the admin API.
	admin, err := s.login(ctx, app.AdminUsername, servertest.AdminPassword)
	if err != nil {
		return s, fmt.Errorf("admin login: %w", err)
	}
	if _, err := admin.UpsertUnits(ctx, s.tree.Units[1:]); err != nil {
		return s, fmt.Errorf("demo units: %w", err)
	}
	var leadUsers, phoneUsers []syncproto.UserInput
	var villageUsers []syncproto.UserInput
	for _, u := range s.tree.Users {
		switch syncproto.UnitLevel(u.Unit) {
		case syncproto.RoleCounty, syncproto.RoleTownship:
			leadUsers = append(leadUsers, u)
		case syncproto.RoleVillage:
			villageUsers = append(villageUsers, u)
		}
	}
	phoneUsers = villageUsers
	if n := cfg.phones; n > 0 && n < len(villageUsers) {
		// Spread the phones over the city rather than fill one county.
		phoneUsers = make([]syncproto.UserInput, n)
		for i := range n {
			phoneUsers[i] = villageUsers[i*len(villageUsers)/n]
		}
	}
	center, _ := s.tree.User(demo.CenterUsername)
	devices := append(append([]syncproto.UserInput{center}, leadUsers...), phoneUsers...)
	if err := s.createUsers(ctx, admin); err != nil {
		return s, err
	}
	for _, u := range s.tree.Users {
		if syncproto.UnitLevel(u.Unit) == syncproto.RoleVillage {
			s.cadres[u.Unit]++
		}
	}
	s.progress("%d units and %d users of %s loaded\n", len(s.tree.Units), len(s.tree.Users), demo.CityName)

	// Everyone signs in before the feed comes: the center, leads, phones.
	if s.center, err = s.login(ctx, demo.CenterUsername, demo.CenterPassword); err != nil {
		return s, fmt.Errorf("center login: %w", err)
	}
	actors := make([]*actor, len(devices))
	err = workpool.Run(8, len(devices), func(i int) error {
		a, err := s.openActor(ctx, devices[i], int64(i))
		actors[i] = a
		return err
	})
	for _, a := range actors {
		if a == nil {
			continue
		}
		switch a.role {
		case syncproto.RoleCenter:
			s.centerSDK = a
		case syncproto.RoleVillage:
			s.phones = append(s.phones, a)
		default:
			s.leads = append(s.leads, a)
		}
	}
	if err != nil {
		return s, err
	}
	s.progress("%d phones, %d leads and the center signed in on the SDK\n", len(s.phones), len(s.leads))

	// The morning feed, imported by the center.
	if err := s.importFeed(ctx); err != nil {
		return s, err
	}
	s.timing.setup = time.Since(start)
	return s, nil
}

// createUsers creates the demo city's users, a few requests at a time: the
// server hashes every password (argon2id), most of the setup's time.
func (s *sim) createUsers(ctx context.Context, admin *remote.Client) error {
	const chunk = 25
	users := s.tree.Users
	var mu sync.Mutex
	return workpool.Run(4, (len(users)+chunk-1)/chunk, func(i int) error {
		resp, err := admin.UpsertUsers(ctx, users[i*chunk:min(len(users), (i+1)*chunk)])
		if err != nil {
			return fmt.Errorf("create users: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range resp.Users {
			s.userIDs[u.Username] = u.ID
			s.usernames[u.ID] = u.Username
		}
		return nil
	})
}

// login signs a user in over plain HTTP from a new device. The client has
// no timeout of its own: its requests are bulk work (users, each hashed
// with argon2id; feeds of a thousand rows) whose time grows with their
// size, bounded by ctx.
func (s *sim) login(ctx context.Context, username, password string) (*remote.Client, error) {
	c := remote.New(s.srv.URL)
	c.HTTP = &http.Client{Transport: s.srv.Transport}
	_, err := c.Login(ctx, syncproto.LoginRequest{
		Username: username, Password: password, DeviceID: uuid.NewString(), DeviceName: "cityday " + username, Platform: "cityday",
	})
	return c, err
}

// openActor opens an SDK client in its own folder with its own key, signs
// the user in and does the first sync.
func (s *sim) openActor(ctx context.Context, u syncproto.UserInput, n int64) (*actor, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	r := &radio{base: s.srv.Transport}
	c, err := clientsdk.Open(filepath.Join(s.srv.TempDir, "devices", u.Username), clientsdk.Options{
		ServerURL:  s.srv.URL,
		DeviceName: "cityday " + u.Username,
		Platform:   "cityday",
		Key:        key,
		HTTPClient: &http.Client{Transport: r, Timeout: 30 * time.Second},
		// A phone without signal gives up quickly and tries again on its
		// next turn, as an app's background sync does.
		Retry: clientsdk.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Attempts: 3},
	})
	if err != nil {
		return nil, fmt.Errorf("open SDK of %s: %w", u.Username, err)
	}
	a := &actor{username: u.Username, unit: u.Unit, role: syncproto.UnitLevel(u.Unit), sdk: c, radio: r,
		rng: mrand.New(mrand.NewPCG(uint64(s.cfg.seed), uint64(n)))}
	info, err := c.Login(ctx, u.Username, u.Password)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", u.Username, err)
	}
	a.userID = info.ID
	if _, err := c.Sync(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("first sync of %s: %w", u.Username, err)
	}
	return a, nil
}

// importFeed imports today's feed as the center and enters each warning in
// the ledger.
func (s *sim) importFeed(ctx context.Context) error {
	now := time.Now()
	s.day = now.In(syncproto.Beijing).Format(time.DateOnly)
	rows := demo.Warnings(s.tree, now, s.cfg.warnings, s.cfg.seed)
	for start := 0; start < len(rows); start += feedChunk {
		part := rows[start:min(len(rows), start+feedChunk)]
		resp, err := s.center.ImportFeed(ctx, part)
		if err != nil {
			return fmt.Errorf("import feed: %w", err)
		}
		if len(resp.Created) != len(part) {
			return fmt.Errorf("feed created %d of %d warnings (%d invalid, %d duplicates)", len(resp.Created), len(part), len(resp.Invalid), len(resp.Duplicates))
		}
		byExt := make(map[string]*syncproto.FeedWarning, len(part))
		for i := range part {
			byExt[part[i].ExternalID] = &part[i]
		}
		for _, c := range resp.Created {
			row := byExt[c.ExternalID]
			if row == nil {
				return fmt.Errorf("feed created %s, which was not sent", c.ExternalID)
			}
			// The feed assigns a warning at once when it lands at a
			// village with exactly one cadre.
			s.ledger.received(c.ID, row, syncproto.UnitLevel(row.Unit) == syncproto.RoleVillage && s.cadres[row.Unit] == 1)
		}
	}
	var county, township int
	for _, r := range rows {
		switch syncproto.UnitLevel(r.Unit) {
		case syncproto.RoleCounty:
			county++
		case syncproto.RoleTownship:
			township++
		}
	}
	first, last := rows[0].WarnedAt.In(syncproto.Beijing), rows[len(rows)-1].WarnedAt.In(syncproto.Beijing)
	s.progress("feed of %s: %d warnings warned %s-%s Beijing time, %d at a county and %d at a township to dispatch\n",
		s.day, len(rows), first.Format("15:04"), last.Format("15:04"), county, township)
	return nil
}

// close closes every device and the server and removes the folders.
func (s *sim) close() {
	all := append(append([]*actor{s.centerSDK}, s.leads...), s.phones...)
	for _, a := range all {
		if a != nil {
			a.sdk.Close()
		}
	}
	if s.srv != nil {
		if err := s.srv.Close(); err != nil {
			fmt.Fprintln(s.stderr, err)
		}
	}
}

// progress writes a line to stderr unless -quiet.
func (s *sim) progress(format string, args ...any) {
	if !s.cfg.quiet {
		fmt.Fprintf(s.stderr, "cityday: "+format, args...)
	}
}
