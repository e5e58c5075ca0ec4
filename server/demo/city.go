package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The demo city.
const (
	CityCode = "4110"
	CityName = "许昌市"
)

// Demo passwords, one per role, so `fieldsyncd demo` can print its logins.
// They are for a throwaway demo store only.
const (
	CenterPassword   = "demo-center"
	CountyPassword   = "demo-county"
	TownshipPassword = "demo-lead"
	VillagePassword  = "demo-cadre"
)

// Password returns the demo password of role ("center", "county",
// "township", "village"), or "" for an unknown role.
func Password(role string) string {
	switch role {
	case syncproto.RoleCenter:
		return CenterPassword
	case syncproto.RoleCounty:
		return CountyPassword
	case syncproto.RoleTownship:
		return TownshipPassword
	case syncproto.RoleVillage:
		return VillagePassword
	}
	return ""
}

// CenterUsername is the username of the city center's user. The other
// usernames follow their unit code (CountyUsername, LeadUsername,
// CadreUsername).
const CenterUsername = "center"

// CountyUsername is the username of the lead of the county with code.
func CountyUsername(code string) string { return "county-" + code }

// LeadUsername is the username of the lead of the township with code.
func LeadUsername(code string) string { return "lead-" + code }

// CadreUsername is the username of the k-th cadre (from 1) of the village
// with code.
func CadreUsername(code string, k int) string { return fmt.Sprintf("cadre-%s-%d", code, k) }

// counties are six of Xuchang's counties, districts and county-level cities
// with their real codes, and some of their real townships and subdistricts.
// Township codes are assigned here in the national pattern (街道 from 001,
// 镇 from 100, 乡 from 200); they are not the official ones.
var counties = []struct {
	code, name string
	townships  []string
}{
	{"411002", "魏都区", []string{"西大街街道", "东大街街道", "南关街道", "五一路街道"}},
	{"411003", "建安区", []string{"尚集镇", "灵井镇", "五女店镇", "陈曹乡"}},
	{"411024", "鄢陵县", []string{"安陵镇", "马栏镇", "南坞乡"}},
	{"411025", "襄城县", []string{"城关镇", "库庄镇", "茨沟乡"}},
	{"411081", "禹州市", []string{"颍川街道", "神垕镇", "鸠山镇", "磨街乡"}},
	{"411082", "长葛市", []string{"建设路街道", "后河镇", "石固镇", "古桥乡"}},
}

// treeSeed fixes the generated village names and counts: the unit tree is
// the same for every City seed.
const treeSeed = 4110

// Tree is a demo city: its units and users, ready for POST /v1/admin/units
// and POST /v1/admin/users.
type Tree struct {
	// Units lists the city, then each county followed by its townships,
	// each followed by its villages: parents always before children.
	Units []syncproto.UnitInput
	// Users lists the center user, then the county, township and village
	// users in unit order. Their role follows their unit's level; their
	// password is Password(role). None is an admin.
	Users []syncproto.UserInput
}

// City returns the demo city of Xuchang. The units are the same for every
// seed; the seed chooses the users' names and which villages have two
// cadres (about a third of them).
func City(seed int64) *Tree {
	t := &Tree{Units: []syncproto.UnitInput{{Code: CityCode, Name: CityName}}}
	tr := rand.New(rand.NewPCG(treeSeed, 0))
	for _, c := range counties {
		t.Units = append(t.Units, syncproto.UnitInput{Code: c.code, Name: c.name})
		next := map[string]int{"街道": 1, "镇": 100, "乡": 200}
		used := map[string]bool{} // village names are unique in a county
		for _, name := range c.townships {
			kind := townshipKind(name)
			code := fmt.Sprintf("%s%03d", c.code, next[kind])
			next[kind]++
			t.Units = append(t.Units, syncproto.UnitInput{Code: code, Name: name})
			t.Units = append(t.Units, villages(tr, used, code, name, kind)...)
		}
	}

	r := rand.New(rand.NewPCG(uint64(seed), 0x6669656c6473796e)) // "fieldsyn"
	names := map[string]bool{}
	name := func() string {
		for {
			if n := personName(r); !names[n] {
				names[n] = true
				return n
			}
		}
	}
	villages := t.Villages()
	two := make(map[string]bool, len(villages))
	for _, i := range r.Perm(len(villages))[:(len(villages)+1)/3] {
		two[villages[i]] = true
	}
	for _, u := range t.Units {
		role := syncproto.UnitLevel(u.Code)
		user := syncproto.UserInput{Password: Password(role), Unit: u.Code}
		switch role {
		case syncproto.RoleCenter:
			user.Username = CenterUsername
		case syncproto.RoleCounty:
			user.Username = CountyUsername(u.Code)
		case syncproto.RoleTownship:
			user.Username = LeadUsername(u.Code)
		case syncproto.RoleVillage:
			user.Username = CadreUsername(u.Code, 1)
		}
		user.Name = name()
		t.Users = append(t.Users, user)
		if two[u.Code] {
			user.Username = CadreUsername(u.Code, 2)
			user.Name = name()
			t.Users = append(t.Users, user)
		}
	}
	return t
}

// townshipKind is 街道, 镇 or 乡, from the end of a township's name.
func townshipKind(name string) string {
	for _, k := range []string{"街道", "镇", "乡"} {
		if strings.HasSuffix(name, k) {
			return k
		}
	}
	panic("demo: township " + name + " is neither 街道, 镇 nor 乡")
}

// villages makes the four to eight villages of a township: communities
// (社区, codes from 001) in a subdistrict; in a town, a community at its seat
// then villages (村, codes from 201); in a rural township, villages only.
// used holds the names already taken in the county, and gets the new ones.
func villages(r *rand.Rand, used map[string]bool, township, townshipName, kind string) []syncproto.UnitInput {
	n := 4 + r.IntN(5)
	unique := func(make func() string) string {
		for {
			if s := make(); !used[s] {
				used[s] = true
				return s
			}
		}
	}
	community := func() string {
		return unique(func() string { return communityWords[r.IntN(len(communityWords))] + "社区" })
	}
	village := func() string {
		return unique(func() string {
			p := villagePatterns[r.IntN(len(villagePatterns))]
			return fmt.Sprintf(p, string(villageSurnames[r.IntN(len(villageSurnames))])) + "村"
		})
	}
	units := make([]syncproto.UnitInput, 0, n)
	nextCommunity, nextVillage := 1, 201
	for i := range n {
		var code, name string
		switch {
		case kind == "街道":
			code, name = fmt.Sprintf("%s%03d", township, nextCommunity), community()
			nextCommunity++
		case kind == "镇" && i == 0:
			stem := strings.TrimSuffix(townshipName, "镇")
			used[stem+"社区"] = true
			code, name = fmt.Sprintf("%s%03d", township, nextCommunity), stem+"社区"
			nextCommunity++
		default:
			code, name = fmt.Sprintf("%s%03d", township, nextVillage), village()
			nextVillage++
		}
		units = append(units, syncproto.UnitInput{Code: code, Name: name})
	}
	return units
}

// codesWhere lists the unit codes keep accepts, in tree order.
func (t *Tree) codesWhere(keep func(code string) bool) []string {
	var codes []string
	for _, u := range t.Units {
		if keep(u.Code) {
			codes = append(codes, u.Code)
		}
	}
	return codes
}

// codesAt lists the unit codes of a level, in tree order.
func (t *Tree) codesAt(level string) []string {
	return t.codesWhere(func(code string) bool { return syncproto.UnitLevel(code) == level })
}

// Counties returns the county codes, in tree order.
func (t *Tree) Counties() []string { return t.codesAt(syncproto.RoleCounty) }

// Townships returns the township codes, in tree order.
func (t *Tree) Townships() []string { return t.codesAt(syncproto.RoleTownship) }

// Villages returns the village codes, in tree order.
func (t *Tree) Villages() []string { return t.codesAt(syncproto.RoleVillage) }

// Name returns the name of the unit with code, or "" when the tree has none.
func (t *Tree) Name(code string) string {
	for _, u := range t.Units {
		if u.Code == code {
			return u.Name
		}
	}
	return ""
}

// Children returns the codes of the units directly below code, in tree
// order.
func (t *Tree) Children(code string) []string {
	return t.codesWhere(func(c string) bool { return syncproto.ParentCode(c) == code })
}

// UsersAt returns the users whose unit is exactly unit: a village's cadres,
// a township's lead.
func (t *Tree) UsersAt(unit string) []syncproto.UserInput {
	var users []syncproto.UserInput
	for _, u := range t.Users {
		if u.Unit == unit {
			users = append(users, u)
		}
	}
	return users
}

// User returns the user with username.
func (t *Tree) User(username string) (syncproto.UserInput, bool) {
	for _, u := range t.Users {
		if u.Username == username {
			return u, true
		}
	}
	return syncproto.UserInput{}, false
}
