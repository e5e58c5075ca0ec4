package servertest

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The small test city: one county, two townships; village A1 has one cadre
// (so warnings there are assigned at once), A2 has two, B1 one.
const (
	UnitCity     = "4110"
	UnitCounty   = "411002"
	UnitTownA    = "411002001"
	UnitVillA1   = "411002001001"
	UnitVillA2   = "411002001002"
	UnitTownB    = "411002002"
	UnitVillB1   = "411002002001"
	CityPassword = "field-password-1"
)

// CityUnits are the small city's units below the root, parents first.
var CityUnits = []syncproto.UnitInput{
	{Code: UnitCounty, Name: "魏都区"},
	{Code: UnitTownA, Name: "西大街街道"},
	{Code: UnitVillA1, Name: "八一路社区"},
	{Code: UnitVillA2, Name: "天宝路社区"},
	{Code: UnitTownB, Name: "东大街街道"},
	{Code: UnitVillB1, Name: "建设路社区"},
}

// CityUsers are its users, all with CityPassword.
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

// LoadCity creates the small city through the admin API and returns each
// user's id by username.
func (s *Server) LoadCity(tb testing.TB) map[string]string {
	tb.Helper()
	ctx := context.Background()
	admin := s.Admin(tb)
	if _, err := admin.UpsertUnits(ctx, CityUnits); err != nil {
		tb.Fatalf("units: %v", err)
	}
	users := make([]syncproto.UserInput, len(CityUsers))
	for i, u := range CityUsers {
		u.Password = CityPassword
		users[i] = u
	}
	resp, err := admin.UpsertUsers(ctx, users)
	if err != nil {
		tb.Fatalf("users: %v", err)
	}
	ids := make(map[string]string, len(resp.Users))
	for _, u := range resp.Users {
		ids[u.Username] = u.ID
	}
	return ids
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
