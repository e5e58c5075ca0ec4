package demo

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Clock is a store's clock that Seed moves to each event's time, so that
// the store records when things happened as if they had happened then.
// Give its Now as store.Options.Now; it is safe for concurrent use.
type Clock struct{ t atomic.Int64 }

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the time the clock shows.
func (c *Clock) Now() time.Time { return time.Unix(0, c.t.Load()).UTC() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.t.Store(t.UnixNano()) }

// Seed writes tree's units and users and then events (History) into st,
// whose clock is clock, through the store's write path: the center's
// ImportFeed with the clock at the import's time, and each person's ops
// pushed from a device of theirs as received at the event's time
// (store.Replay, which writes the ops between two imports in one
// transaction). The store must hold the root unit and its admin
// (app.Bootstrap). Every op must apply: one the store rejects means the
// history is wrong, and Seed fails. It leaves the clock at the last
// event's time. Between the days of the history it compacts the scope
// indexes, as a running server does daily (app.CompactEvery), so the
// store is the one a server that lived through those days would hold.
func Seed(ctx context.Context, st *store.Store, clock *Clock, tree *Tree, events []Event) error {
	if len(events) > 0 {
		clock.Set(events[0].At.Add(-time.Hour))
	}
	users, err := loadTree(ctx, st, tree)
	if err != nil {
		return err
	}
	s := &seeder{st: st, clock: clock, users: users, devices: map[string]*device{}, ids: map[string]string{}, versions: map[string]uint64{}, touched: map[string]bool{}}
	var day string
	for _, e := range events {
		if d := e.At.In(syncproto.Beijing).Format(time.DateOnly); d != day {
			if day != "" {
				if err := s.compact(ctx); err != nil {
					return fmt.Errorf("compact the indexes after %s: %w", day, err)
				}
			}
			day = d
		}
		if err := s.add(ctx, e); err != nil {
			return fmt.Errorf("event at %s by %s: %w", e.At.Format(time.RFC3339), e.Actor, err)
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	if len(events) > 0 {
		clock.Set(events[len(events)-1].At)
	}
	return nil
}

// loadTree writes tree's units below the root and its users, as the
// admin, and returns the users by username. Every user of a role shares
// its password, so each is hashed once.
func loadTree(ctx context.Context, st *store.Store, tree *Tree) (map[string]*store.User, error) {
	admin, err := st.UserByUsername(app.AdminUsername)
	if err != nil {
		return nil, err
	}
	if admin == nil {
		return nil, errors.New("the store has no admin: bootstrap it first")
	}
	root := admin.Actor("")
	if _, err := st.UpsertUnits(ctx, root, tree.Units[1:]); err != nil {
		return nil, fmt.Errorf("units: %w", err)
	}
	hashes := map[string]string{}
	updates := make([]store.UserUpdate, len(tree.Users))
	for i, u := range tree.Users {
		h, ok := hashes[u.Password]
		if !ok {
			if h, err = auth.HashPassword(u.Password); err != nil {
				return nil, err
			}
			hashes[u.Password] = h
		}
		updates[i] = store.UserUpdate{Username: u.Username, Name: u.Name, Unit: u.Unit, Admin: u.Admin, PasswordHash: h}
	}
	stored, err := st.UpsertUsers(ctx, root, updates)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	users := make(map[string]*store.User, len(stored))
	for i := range stored {
		users[stored[i].Username] = &stored[i]
	}
	return users, nil
}

// seeder writes a history's events, knowing the warnings' ids by external
// id and the version each was last seen at. It gathers the ops between
// two imports into pushes for one Replay.
type seeder struct {
	st       *store.Store
	clock    *Clock
	users    map[string]*store.User
	devices  map[string]*device
	ids      map[string]string
	versions map[string]uint64
	// pending are the pushes of the next Replay, and touched the
	// warnings they are about.
	pending []store.Replayed
	events  [][]Event
	touched map[string]bool
}

// maxReplay caps the pushes of one Replay, and so one transaction's size.
const maxReplay = 2000

// device is a demo phone of one user, numbering its ops.
type device struct {
	actor syncproto.Actor
	seq   uint64
}

// add writes an import at once, and gathers an op for the next Replay.
// A review of a warning already in it waits for the next one: it must
// name the version the attempts before it gave the warning, as the lead's
// phone would, or the server flags it as stale.
func (s *seeder) add(ctx context.Context, e Event) error {
	u := s.users[e.Actor]
	if u == nil {
		return fmt.Errorf("no user %s in the tree", e.Actor)
	}
	if e.Feed != nil {
		if err := s.flush(ctx); err != nil {
			return err
		}
		s.clock.Set(e.At)
		return s.importFeed(ctx, u, e.Feed)
	}
	if (e.Op.Type == syncproto.OpReviewed && s.touched[e.Warning]) || len(s.pending) >= maxReplay {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	d, err := s.device(ctx, u, e.At)
	if err != nil {
		return err
	}
	op, err := s.op(d, e)
	if err != nil {
		return err
	}
	s.touched[e.Warning] = true
	if n := len(s.pending); n > 0 && s.pending[n-1].Actor == d.actor && s.pending[n-1].At.Equal(e.At) {
		s.pending[n-1].Ops = append(s.pending[n-1].Ops, op)
		s.events[n-1] = append(s.events[n-1], e)
		return nil
	}
	s.pending = append(s.pending, store.Replayed{At: e.At, Actor: d.actor, Ops: []syncproto.Op{op}})
	s.events = append(s.events, []Event{e})
	return nil
}

// op is e's op as d sends it.
func (s *seeder) op(d *device, e Event) (syncproto.Op, error) {
	id, ok := s.ids[e.Warning]
	if !ok {
		return syncproto.Op{}, fmt.Errorf("op on warning %s, which was never imported", e.Warning)
	}
	op := e.Op
	d.seq++
	op.ID, op.ClientSeq, op.WarningID, op.BaseVersion = uuid.NewString(), d.seq, id, s.versions[id]
	switch op.Type {
	case syncproto.OpRecorded:
		op.Body.AttemptID = uuid.NewString()
	case syncproto.OpAssigned:
		cadre := s.users[op.Body.Assignee]
		if cadre == nil {
			return syncproto.Op{}, fmt.Errorf("assignee %s is not in the tree", op.Body.Assignee)
		}
		op.Body.Assignee = cadre.ID
	}
	return op, nil
}

// compact writes what is pending, then compacts the scope indexes as the
// server's daily upkeep does, with its default horizon.
func (s *seeder) compact(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	_, err := s.st.CompactIndex(ctx, store.DefaultTombstoneHorizon)
	return err
}

// flush replays the pending pushes and learns the versions they gave.
func (s *seeder) flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	resps, err := s.st.Replay(ctx, s.pending)
	if err != nil {
		return err
	}
	for i, resp := range resps {
		for j, res := range resp.Results {
			op := &s.pending[i].Ops[j]
			if res.Status != syncproto.StatusApplied {
				return fmt.Errorf("%s on %s: %s %s: %s", op.Type, s.events[i][j].Warning, res.Status, res.Code, res.Message)
			}
			s.versions[op.WarningID] = res.Version
		}
	}
	s.pending, s.events = s.pending[:0], s.events[:0]
	clear(s.touched)
	return nil
}

// importFeed imports rows as the center does, and learns their ids.
func (s *seeder) importFeed(ctx context.Context, u *store.User, rows []syncproto.FeedWarning) error {
	feed := make([]store.FeedRow, len(rows))
	for i, w := range rows {
		feed[i] = store.FeedRow{Num: i + 1, Warning: w}
	}
	resp, err := s.st.ImportFeed(ctx, u.Actor(""), feed)
	if err != nil {
		return err
	}
	if len(resp.Invalid) > 0 {
		return fmt.Errorf("feed row %d: %s", resp.Invalid[0].Row, resp.Invalid[0].Message)
	}
	for _, c := range resp.Created {
		s.ids[c.ExternalID] = c.ID
	}
	return nil
}

// device signs u in on a demo phone, at at, the first time u acts.
func (s *seeder) device(ctx context.Context, u *store.User, at time.Time) (*device, error) {
	if d, ok := s.devices[u.ID]; ok {
		return d, nil
	}
	_, hash, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	d := &device{actor: u.Actor(uuid.NewString())}
	s.clock.Set(at)
	if _, err := s.st.Login(ctx, u, store.SignIn{DeviceID: d.actor.DeviceID, Name: "演示手机", Platform: "demo", RefreshHash: hash, RefreshTTL: time.Hour}); err != nil {
		return nil, fmt.Errorf("sign %s in: %w", u.Username, err)
	}
	s.devices[u.ID] = d
	return d, nil
}
