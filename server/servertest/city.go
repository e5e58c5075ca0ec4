package servertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The small test city is a corner of the demo city (server/demo): its
// county 魏都区, two townships, and three of their villages. Village A1 has
// one cadre (so warnings there are assigned at once), A2 has two, B1 one.
const (
	UnitCity     = demo.CityCode
	UnitCounty   = "411002"
	UnitTownA    = "411002001"
	UnitVillA1   = "411002001001"
	UnitVillA2   = "411002001002"
	UnitTownB    = "411002002"
	UnitVillB1   = "411002002001"
	CityPassword = "field-password-1"
)

// demoCity is the demo city the fixtures draw their units from. Its unit
// tree is the same for every seed.
var demoCity = demo.City(1)

// CityUnits are the small city's units below the root, parents first, with
// their names in the demo city.
var CityUnits = demoUnits(UnitCounty, UnitTownA, UnitVillA1, UnitVillA2, UnitTownB, UnitVillB1)

// CityUsers are its users, all with CityPassword. They are the tests' own
// people, named for their place (a2x and a2y are A2's two cadres), not the
// demo's: test assertions name them.
var CityUsers = []syncproto.UserInput{
	{Username: "center1", Name: "张中心", Unit: UnitCity},
	{Username: "county1", Name: "李县", Unit: UnitCounty},
	{Username: "leadA", Name: "王镇甲", Unit: UnitTownA},
	{Username: "leadB", Name: "赵镇乙", Unit: UnitTownB},
	{Username: "a1", Name: "刘村一", Unit: UnitVillA1},
	{Username: "a2x", Name: "陈村二", Unit: UnitVillA2},
	{Username: "a2y", Name: "杨村三", Unit: UnitVillA2},
	{Username: "b1", Name: "黄村四", Unit: UnitVillB1},
}

// demoUnits picks the units of codes out of the demo city.
func demoUnits(codes ...string) []syncproto.UnitInput {
	units := make([]syncproto.UnitInput, len(codes))
	for i, code := range codes {
		name := demoCity.Name(code)
		if name == "" {
			panic("servertest: the demo city has no unit " + code)
		}
		units[i] = syncproto.UnitInput{Code: code, Name: name}
	}
	return units
}

// root is the demo city's root unit, the one Start creates.
func root() syncproto.UnitInput { return demoCity.Units[0] }

// City returns the small city as a tree, its users with CityPassword, for
// LoadTree, Load and LoadStore.
func City() *demo.Tree {
	t := &demo.Tree{Units: append([]syncproto.UnitInput{root()}, CityUnits...)}
	for _, u := range CityUsers {
		u.Password = CityPassword
		t.Users = append(t.Users, u)
	}
	return t
}

// Township returns a city of one county and one township (UnitTownA) with
// n villages below it and exactly one cadre in each, so the feed assigns a
// village's warnings to its cadre at once: for benchmarks and load tests
// that need many phones. The villages and cadres are the demo city's as far
// as it has them, then numbered on; every cadre's username is
// demo.CadreUsername(village, 1) and password demo.VillagePassword.
func Township(n int) *demo.Tree {
	t := &demo.Tree{Units: []syncproto.UnitInput{root()}}
	t.Units = append(t.Units, demoUnits(UnitCounty, UnitTownA)...)
	villages := demoCity.Children(UnitTownA)
	for i := range n {
		code := fmt.Sprintf("%s%03d", UnitTownA, i+1)
		name, cadre := fmt.Sprintf("第%d社区", i+1), fmt.Sprintf("村干部%d", i+1)
		if i < len(villages) && villages[i] == code {
			name = demoCity.Name(code)
			if u, ok := demoCity.User(demo.CadreUsername(code, 1)); ok {
				cadre = u.Name
			}
		}
		t.Units = append(t.Units, syncproto.UnitInput{Code: code, Name: name})
		t.Users = append(t.Users, syncproto.UserInput{Username: demo.CadreUsername(code, 1), Password: demo.VillagePassword, Name: cadre, Unit: code})
	}
	return t
}

// Load creates tree's units and users through the admin API, as admin (a
// client signed in as an administrator of the root), and returns each
// user's id by username. The tree's first unit, the root, is the server's
// own already and is left as it is.
func Load(tb testing.TB, admin *remote.Client, tree *demo.Tree) map[string]string {
	tb.Helper()
	ctx := context.Background()
	if len(tree.Units) > 1 {
		if _, err := admin.UpsertUnits(ctx, tree.Units[1:]); err != nil {
			tb.Fatalf("units: %v", err)
		}
	}
	ids := make(map[string]string, len(tree.Users))
	if len(tree.Users) == 0 {
		return ids
	}
	resp, err := admin.UpsertUsers(ctx, tree.Users)
	if err != nil {
		tb.Fatalf("users: %v", err)
	}
	for _, u := range resp.Users {
		ids[u.Username] = u.ID
	}
	return ids
}

// LoadTree loads tree into the server as its admin (see Load).
func (s *Server) LoadTree(tb testing.TB, tree *demo.Tree) map[string]string {
	tb.Helper()
	return Load(tb, s.Admin(tb).Client, tree)
}

// LoadCity creates the small city through the admin API and returns each
// user's id by username.
func (s *Server) LoadCity(tb testing.TB) map[string]string {
	tb.Helper()
	return s.LoadTree(tb, City())
}

// LoadStore writes tree's units and users straight into st, for tests of
// the store without a server, and returns the stored users by username.
// The root is written too when st has none yet. Passwords are hashed as
// the admin API hashes them (cheaply in a test binary that uses
// authtest), once per distinct password.
func LoadStore(tb testing.TB, st *store.Store, tree *demo.Tree) map[string]store.User {
	tb.Helper()
	ctx := context.Background()
	system := syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: tree.Units[0].Code}
	units := tree.Units
	if r, err := st.Unit(units[0].Code); err != nil {
		tb.Fatalf("read the root unit: %v", err)
	} else if r != nil {
		units = units[1:]
	}
	if len(units) > 0 {
		if _, err := st.UpsertUnits(ctx, system, units); err != nil {
			tb.Fatalf("units: %v", err)
		}
	}
	hashes := map[string]string{}
	updates := make([]store.UserUpdate, len(tree.Users))
	for i, u := range tree.Users {
		if _, ok := hashes[u.Password]; !ok {
			h, err := auth.HashPassword(u.Password)
			if err != nil {
				tb.Fatalf("hash the password of %s: %v", u.Username, err)
			}
			hashes[u.Password] = h
		}
		updates[i] = store.UserUpdate{Username: u.Username, Name: u.Name, Unit: u.Unit, Admin: u.Admin, PasswordHash: hashes[u.Password]}
	}
	byName := make(map[string]store.User, len(updates))
	if len(updates) == 0 {
		return byName
	}
	users, err := st.UpsertUsers(ctx, system, updates)
	if err != nil {
		tb.Fatalf("users: %v", err)
	}
	for _, u := range users {
		byName[u.Username] = u
	}
	return byName
}

// Import imports rows as username (a center user of the small city) and
// returns the created warnings' ids by external id; any refused row fails
// the test.
func (s *Server) Import(tb testing.TB, username string, rows ...syncproto.FeedWarning) map[string]string {
	tb.Helper()
	d := s.Login(tb, username, CityPassword)
	resp, err := d.ImportFeed(context.Background(), rows)
	if err != nil || len(resp.Invalid) > 0 {
		tb.Fatalf("import: %+v %v", resp, err)
	}
	ids := make(map[string]string, len(resp.Created))
	for _, c := range resp.Created {
		ids[c.ExternalID] = c.ID
	}
	return ids
}

// FeedRow is a feed warning with external id ext at unit, with risk,
// warned at warnedAt. The person's name and address are made from ext, so
// a test can find them in what the server sends.
func FeedRow(ext, unit, risk string, warnedAt time.Time) syncproto.FeedWarning {
	return syncproto.FeedWarning{
		ExternalID: ext, Name: "测试" + ext, Phone: "13800001234", IDTail: "123X",
		Address: "某村某组" + ext, Unit: unit, FraudType: "刷单返利", Risk: risk, WarnedAt: warnedAt,
	}
}
