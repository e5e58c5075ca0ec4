// Package benchcity builds the store the large measurements run on: the
// demo city of Xuchang (server/demo) with a signed-in device for each
// township lead and for a cadre of each village, and, on request, a month
// of warnings with the field's work on them (LoadWarnings) and more cadres
// until the city has as many devices as a measurement wants (AddCadres).
//
// BenchmarkQueriesAt1M (server/store) and examples/scale build their
// stores with it, so the store the read benchmarks measure and the store
// the server's memory is measured on are made the same way. It writes
// through the store's own methods with fsync off, as a restored city
// would have been written by its server, only faster.
package benchcity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// AdminPassword is the password of the store's administrator.
const AdminPassword = "bench-admin-password"

// Device is a user with one registered device: a village cadre or a
// township lead. Its password is demo.Password of its role.
type Device struct {
	User  store.User
	Actor syncproto.Actor
	// Seq is the last client_seq the device used.
	Seq uint64
	// Rnd draws the device's ids and attempt details, so a build is the
	// same every time.
	Rnd *mrand.Rand
}

// City is a store holding the demo city and its devices.
type City struct {
	Store *store.Store
	Dir   string
	// Admin is the store's administrator, acting from no device.
	Admin syncproto.Actor
	// Cadres are the first cadre of each village in tree order, the only
	// cadre there while LoadWarnings runs (so the feed assigns a village's
	// warnings to it at once), then the cadres AddCadres added.
	Cadres []*Device
	// Leads are the township leads by township code.
	Leads map[string]*Device
	// tree is the demo city the units and users come from.
	tree *demo.Tree
}

// Options says how New opens the store.
type Options struct {
	// NoSync turns fsync off, for building quickly.
	NoSync bool
	// Now is the store's clock; time.Now when nil.
	Now func() time.Time
}

// DeviceID is the device id of username's device: derived from the
// username, so that a program reusing a built store signs each person in
// from the device the store already knows.
func DeviceID(username string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://fieldsync.invalid/benchcity/"+username)).String()
}

// New creates a store in dir (which must hold none) with the demo city's
// units, a lead per township and the first cadre of each village, each
// signed in from its device.
func New(ctx context.Context, dir string, opts Options) (*City, error) {
	st, err := store.Open(dir, store.Options{Create: true, NoSync: opts.NoSync, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	c, err := build(ctx, st, dir)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return c, nil
}

func build(ctx context.Context, st *store.Store, dir string) (*City, error) {
	if err := app.Bootstrap(ctx, st, demo.CityCode, demo.CityName, AdminPassword); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	admin, err := st.UserByUsername(app.AdminUsername)
	if err != nil {
		return nil, err
	}
	if admin == nil {
		return nil, errors.New("no admin after bootstrap")
	}
	c := &City{Store: st, Dir: dir, Admin: admin.Actor(uuid.NewString()), Leads: map[string]*Device{}, tree: demo.City(1)}
	// The demo city's township leads and the first cadre of each village.
	tree := &demo.Tree{Units: c.tree.Units, Users: slices.DeleteFunc(slices.Clone(c.tree.Users), func(u syncproto.UserInput) bool {
		switch syncproto.UnitLevel(u.Unit) {
		case syncproto.RoleTownship:
			return false
		case syncproto.RoleVillage:
			return u.Username != demo.CadreUsername(u.Unit, 1)
		}
		return true
	})}
	if _, err := st.UpsertUnits(ctx, systemActor(), tree.Units[1:]); err != nil {
		return nil, fmt.Errorf("units: %w", err)
	}
	if err := c.addDevices(ctx, tree.Users, 0); err != nil {
		return nil, err
	}
	return c, nil
}

// systemActor writes the city's units and users, as the store's own setup.
func systemActor() syncproto.Actor {
	return syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: demo.CityCode}
}

// addDevices creates users (their password hashed once per distinct
// password), signs each in from its device (DeviceID), and appends them to
// the city's cadres and leads; first numbers their random sources.
func (c *City) addDevices(ctx context.Context, users []syncproto.UserInput, first int) error {
	hashes := map[string]string{}
	updates := make([]store.UserUpdate, len(users))
	for i, u := range users {
		if _, ok := hashes[u.Password]; !ok {
			h, err := auth.HashPassword(u.Password)
			if err != nil {
				return fmt.Errorf("hash the password of %s: %w", u.Username, err)
			}
			hashes[u.Password] = h
		}
		updates[i] = store.UserUpdate{Username: u.Username, Name: u.Name, Unit: u.Unit, PasswordHash: hashes[u.Password]}
	}
	stored, err := c.Store.UpsertUsers(ctx, systemActor(), updates)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	byName := make(map[string]store.User, len(stored))
	for _, u := range stored {
		byName[u.Username] = u
	}
	for i, in := range users {
		u := byName[in.Username]
		d := &Device{User: u, Actor: u.Actor(DeviceID(u.Username)), Rnd: mrand.New(mrand.NewPCG(uint64(first+i), 1))}
		var hash [32]byte
		rand.Read(hash[:])
		if _, err := c.Store.Login(ctx, &d.User, store.SignIn{DeviceID: d.Actor.DeviceID, Name: "bench " + u.Username, Platform: "bench", RefreshHash: hash, RefreshTTL: time.Hour}); err != nil {
			return fmt.Errorf("sign %s in: %w", u.Username, err)
		}
		if u.Role == syncproto.RoleTownship {
			c.Leads[u.Unit] = d
		} else {
			c.Cadres = append(c.Cadres, d)
		}
	}
	return nil
}

// Devices counts the city's devices.
func (c *City) Devices() int { return len(c.Cadres) + len(c.Leads) }

// AddCadres adds village cadres, each signed in from a device, until the
// city has devices devices: the k-th cadre of every village in tree order,
// k = 2, 3, ..., so every village ends with several. Their usernames are
// demo.CadreUsername(village, k), their password demo.VillagePassword.
// Villages with several cadres get no warning assigned by the feed, so
// call it after LoadWarnings.
func (c *City) AddCadres(ctx context.Context, devices int) error {
	users := ExtraCadres(c.tree, devices-c.Devices())
	if len(users) == 0 {
		return nil
	}
	return c.addDevices(ctx, users, c.Devices())
}

// ExtraCadres are the n cadres AddCadres adds to the demo city tree.
func ExtraCadres(tree *demo.Tree, n int) []syncproto.UserInput {
	villages := tree.Villages()
	users := make([]syncproto.UserInput, 0, max(n, 0))
	for i := range max(n, 0) {
		v, k := villages[i%len(villages)], 2+i/len(villages)
		users = append(users, syncproto.UserInput{
			Username: demo.CadreUsername(v, k), Password: demo.VillagePassword, Unit: v,
			Name: fmt.Sprintf("%s村干部%d", tree.Name(v), k),
		})
	}
	return users
}

// People lists who has a device in a city of devices devices, as New and
// AddCadres make it: the township leads and the first cadre of each
// village in tree order, then ExtraCadres. A program that reuses a built
// store signs them in from it.
func People(devices int) []syncproto.UserInput {
	tree := demo.City(1)
	var people []syncproto.UserInput
	for _, u := range tree.Users {
		switch syncproto.UnitLevel(u.Unit) {
		case syncproto.RoleTownship:
			people = append(people, u)
		case syncproto.RoleVillage:
			if u.Username == demo.CadreUsername(u.Unit, 1) {
				people = append(people, u)
			}
		}
	}
	return append(people, ExtraCadres(tree, devices-len(people))...)
}

// Reopen closes the store and opens it again with opts (Create is
// ignored): fsync on, say, or another clock.
func (c *City) Reopen(opts store.Options) error {
	if err := c.Store.Close(); err != nil {
		return err
	}
	opts.Create = false
	st, err := store.Open(c.Dir, opts)
	if err != nil {
		return err
	}
	c.Store = st
	return nil
}

// UUID is a random v4 UUID from r, cheaper than crypto/rand.
func UUID(r *mrand.Rand) string {
	var u uuid.UUID
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// Notes are the notes of recorded attempts, as cadres write them.
var Notes = []string{
	"电话联系本人，已告知刷单返利均为诈骗，本人表示理解并卸载了相关APP。",
	"上门走访未见本人，家属称其外出务工，已留联系方式并嘱咐家属转告。",
	"视频通话，本人正在向所谓投资导师转账，经劝阻已停止操作并报警。",
	"电话无人接听，短信已发送预警提示，明日再次上门。",
}

// attemptKinds are the attempts a benchmark's cadres record, in turn or
// at random: one of each outcome a first visit or call commonly has.
var attemptKinds = []struct {
	outcome, method string
	reached         bool
}{
	{syncproto.OutcomeUnreachable, syncproto.MethodPhone, false},
	{syncproto.OutcomeRefused, syncproto.MethodVisit, true},
	{syncproto.OutcomeDissuaded, syncproto.MethodVisit, true},
}

// RecordedOp is a dissuasion.recorded op of client_seq seq on warning,
// made now: the attempt of kind k (any int; taken modulo the kinds), with
// notes and a location from r.
func RecordedOp(r *mrand.Rand, seq uint64, warning string, k int, now time.Time) syncproto.Op {
	o := attemptKinds[k%len(attemptKinds)]
	reached := o.reached
	return syncproto.Op{
		ID: UUID(r), ClientSeq: seq, Type: syncproto.OpRecorded, WarningID: warning, At: now,
		Body: syncproto.OpBody{
			AttemptID: UUID(r), Method: o.method, Reached: &reached, Outcome: o.outcome,
			Notes:    Notes[r.IntN(len(Notes))],
			Location: &syncproto.Location{Lat: 34.02 + r.Float64()/10, Lng: 113.82 + r.Float64()/10, Accuracy: 15},
		},
	}
}
