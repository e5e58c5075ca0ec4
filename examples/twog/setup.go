package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/examples/internal/cityload"
	"github.com/fieldsync/fieldsync/examples/internal/localserver"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The county and township the scenarios happen in: 建安区 is towns and
// villages (村), where 2G links are; 尚集镇 is its township with the most
// villages and three of them with two cadres, so its lead assigns work.
const (
	countyCode   = "411003"
	townshipCode = "411003100"
)

// sizes are the scenarios' sizes at -scale 1.
const (
	countyWarnings = 2500 // a month of the county's warnings
	// townshipShare of them are in the township: a busy one.
	townshipShare = 0.5
	// cadreRows are the month's feed rows naming the cadre's village; a few
	// stay above it undispatched, about 75 reach the cadre.
	cadreRows  = 78
	dayAttempt = 30        // attempts of scenario 2
	dayPhotos  = 10        // of them with a photo
	photoBytes = 200 << 10 // each photo
)

// sizes are the sizes after -scale.
type sizes struct {
	county, township, cadre int
	attempts, photos        int
	photoBytes              int
}

func scaled(scale float64) sizes {
	n := func(v float64, least int) int { return max(least, int(math.Round(v*scale))) }
	s := sizes{
		county: n(countyWarnings, 40), cadre: n(cadreRows, 2),
		attempts: n(dayAttempt, 1), photos: n(dayPhotos, 1), photoBytes: n(photoBytes, 4<<10),
	}
	s.township = max(s.cadre*2, int(math.Round(float64(s.county)*townshipShare)))
	s.photos = min(s.photos, s.attempts)
	return s
}

// env is the running server, the county's people and its month of work.
type env struct {
	cfg     *config
	stderr  io.Writer
	srv     *localserver.Server
	addr    string // the server's host:port, the proxies' target
	tree    *demo.Tree
	userIDs map[string]string
	size    sizes
	// The cast: the cadre of scenarios 1 and 2, the two cadres of
	// scenario 5, the leads of scenarios 3 and 4.
	cadre        syncproto.UserInput
	outageCadres [2]syncproto.UserInput
	townshipLead syncproto.UserInput
	countyLead   syncproto.UserInput
	work         monthStats
	setupTime    time.Duration
	phones       []*phone
}

func setup(ctx context.Context, cfg *config, stderr io.Writer) (e *env, err error) {
	start := time.Now()
	e = &env{cfg: cfg, stderr: stderr, tree: demo.City(cfg.seed), size: scaled(cfg.scale)}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	// The server's own warnings and errors are worth seeing; its request
	// log is not.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if e.srv, err = localserver.Start(localserver.Options{Name: "twog", Server: servertest.Options{Logger: logger}, Conns: 16}); err != nil {
		return e, err
	}
	e.addr = strings.TrimPrefix(e.srv.URL, "http://")

	admin, err := e.login(ctx, syncproto.UserInput{Username: app.AdminUsername, Password: servertest.AdminPassword})
	if err != nil {
		return e, fmt.Errorf("admin login: %w", err)
	}
	if _, err := admin.c.UpsertUnits(ctx, e.tree.Units[1:]); err != nil {
		return e, fmt.Errorf("demo units: %w", err)
	}
	// Only the county's people (and the center, who imports the feed):
	// each user costs an argon2id hash, and nobody else is in a scope
	// measured here.
	var users []syncproto.UserInput
	for _, u := range e.tree.Users {
		if u.Username == demo.CenterUsername || strings.HasPrefix(u.Unit, countyCode) {
			users = append(users, u)
		}
	}
	if e.userIDs, err = cityload.UpsertUsers(ctx, admin.c, users); err != nil {
		return e, err
	}
	if err := e.cast(); err != nil {
		return e, err
	}
	e.progress("%d units of %s, %d people of %s; a month of work ...\n",
		len(e.tree.Units), demo.CityName, len(users), e.tree.Name(countyCode))
	if e.work, err = simulateMonth(ctx, e); err != nil {
		return e, err
	}
	e.setupTime = time.Since(start)
	e.progress("setup done in %v\n", e.setupTime.Round(100*time.Millisecond))
	return e, nil
}

// cast picks the people of the scenarios: the cadre is the sole cadre of
// the township's first village that has one (the feed assigns its
// warnings at once); scenario 5's cadres are the next two such.
func (e *env) cast() error {
	var sole []syncproto.UserInput
	for _, v := range e.tree.Children(townshipCode) {
		if us := e.tree.UsersAt(v); len(us) == 1 {
			sole = append(sole, us[0])
		}
	}
	if len(sole) < 3 {
		return fmt.Errorf("township %s has %d villages with one cadre, want 3", townshipCode, len(sole))
	}
	e.cadre, e.outageCadres = sole[0], [2]syncproto.UserInput{sole[1], sole[2]}
	lead, ok := e.tree.User(demo.LeadUsername(townshipCode))
	county, ok2 := e.tree.User(demo.CountyUsername(countyCode))
	if !ok || !ok2 {
		return fmt.Errorf("the demo city has no lead of %s or %s", townshipCode, countyCode)
	}
	e.townshipLead, e.countyLead = lead, county
	return nil
}

// member is one person signed in over loopback from a device of their
// own, for the setup's work.
type member struct {
	user   syncproto.UserInput
	id     string
	c      *remote.Client
	device string
	seq    uint64
	// ops wait for the next push; photos for the upload after it.
	ops    []syncproto.Op
	photos []photo
}

// login signs u in over loopback from a new device. The client has no
// timeout of its own: setup requests are bulk work bounded by ctx.
func (e *env) login(ctx context.Context, u syncproto.UserInput) (*member, error) {
	c := remote.New(e.srv.URL)
	c.HTTP = &http.Client{Transport: e.srv.Transport}
	m := &member{user: u, c: c, device: uuid.NewString()}
	resp, err := c.Login(ctx, syncproto.LoginRequest{
		Username: u.Username, Password: u.Password, DeviceID: m.device, DeviceName: "twog setup " + u.Username, Platform: "twog",
	})
	if err != nil {
		return nil, err
	}
	m.id = resp.User.ID
	return m, nil
}

func (m *member) nextSeq() uint64 {
	m.seq++
	return m.seq
}

// close closes every phone and proxy and the server, and removes the
// folders.
func (e *env) close() {
	for _, p := range e.phones {
		p.close()
	}
	if e.srv != nil {
		if err := e.srv.Close(); err != nil {
			fmt.Fprintln(e.stderr, err)
		}
	}
}

// progress writes a line to stderr unless -quiet.
func (e *env) progress(format string, args ...any) {
	if !e.cfg.quiet {
		fmt.Fprintf(e.stderr, "twog: "+format, args...)
	}
}

// printSetup says what the server holds.
func (e *env) printSetup(w io.Writer) {
	s := e.work
	fmt.Fprintf(w, "server: %s %s (%d villages) with a month of warnings imported day by day and worked on through the API:\n",
		e.tree.Name(countyCode), countyCode, s.villages)
	fmt.Fprintf(w, "  %d warnings in the county, %d in township %s %s, %d assigned to cadre %s (%s)\n",
		s.county, s.township, e.tree.Name(townshipCode), townshipCode, s.cadre, e.cadre.Username, e.tree.Name(e.cadre.Unit))
	fmt.Fprintf(w, "  %d dispatches, %d assignments, %d attempts (%d with photos: %d photos, %d never uploaded), %d reviews, %d flags\n",
		s.dispatches, s.assignments, s.attempts, s.withPhotos, s.photos, s.photosMissing, s.reviews, s.flags)
	fmt.Fprintf(w, "  log: %d entries in all, %d of them on the township's warnings, %d on the county's; setup took %v\n",
		s.log, s.townshipChanges, s.countyChanges, e.setupTime.Round(100*time.Millisecond))
}
