package demo_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestCity_Units(t *testing.T) {
	tree := demo.City(1)
	if u := tree.Units[0]; u.Code != demo.CityCode || u.Name != demo.CityName {
		t.Fatalf("first unit = %+v, want the city", u)
	}

	t.Run("ParentsBeforeChildren", func(t *testing.T) {
		seen := map[string]bool{}
		for _, u := range tree.Units {
			if syncproto.UnitLevel(u.Code) == "" {
				t.Fatalf("unit %q: not a valid code", u.Code)
			}
			if seen[u.Code] {
				t.Fatalf("unit %q twice", u.Code)
			}
			if p := syncproto.ParentCode(u.Code); p != "" && !seen[p] {
				t.Fatalf("unit %q comes before its parent %q", u.Code, p)
			}
			if u.Name == "" {
				t.Fatalf("unit %q has no name", u.Code)
			}
			seen[u.Code] = true
		}
	})

	t.Run("Shape", func(t *testing.T) {
		counties := tree.Counties()
		if len(counties) < 4 {
			t.Fatalf("%d counties, want at least 4", len(counties))
		}
		official := map[string]string{
			"411002": "魏都区", "411003": "建安区", "411024": "鄢陵县",
			"411025": "襄城县", "411081": "禹州市", "411082": "长葛市",
		}
		for _, c := range counties {
			if official[c] != tree.Name(c) {
				t.Errorf("county %s is named %q, want %q", c, tree.Name(c), official[c])
			}
			townships := tree.Children(c)
			if len(townships) < 3 || len(townships) > 5 {
				t.Errorf("county %s has %d townships, want 3 to 5", c, len(townships))
			}
			names := map[string]bool{}
			for _, tw := range townships {
				if n := tree.Name(tw); !strings.HasSuffix(n, "街道") && !strings.HasSuffix(n, "镇") && !strings.HasSuffix(n, "乡") {
					t.Errorf("township %s is named %q", tw, n)
				}
				villages := tree.Children(tw)
				if len(villages) < 4 || len(villages) > 8 {
					t.Errorf("township %s has %d villages, want 4 to 8", tw, len(villages))
				}
				for _, v := range villages {
					n := tree.Name(v)
					if !strings.HasSuffix(n, "村") && !strings.HasSuffix(n, "社区") {
						t.Errorf("village %s is named %q", v, n)
					}
					if names[n] {
						t.Errorf("village name %q twice in county %s", n, c)
					}
					names[n] = true
				}
			}
		}
		if n := len(tree.Villages()); n < 36 {
			t.Errorf("%d villages, want dozens", n)
		}
	})

	t.Run("SameForEverySeed", func(t *testing.T) {
		if other := demo.City(99); !reflect.DeepEqual(other.Units, tree.Units) {
			t.Fatal("units differ between seeds")
		}
	})
}

var (
	usernamePattern = regexp.MustCompile(`^[a-z0-9-]+$`)
	hanName         = regexp.MustCompile(`^\p{Han}{2,3}$`)
)

func TestCity_Users(t *testing.T) {
	tree := demo.City(1)
	units := map[string]bool{}
	for _, u := range tree.Units {
		units[u.Code] = true
	}

	usernames := map[string]bool{}
	names := map[string]bool{}
	byUnit := map[string][]syncproto.UserInput{}
	for _, u := range tree.Users {
		if !usernamePattern.MatchString(u.Username) {
			t.Errorf("username %q is not plain ASCII", u.Username)
		}
		if usernames[u.Username] {
			t.Errorf("username %q twice", u.Username)
		}
		usernames[u.Username] = true
		if names[u.Name] {
			t.Errorf("name %q twice", u.Name)
		}
		names[u.Name] = true
		if !hanName.MatchString(u.Name) {
			t.Errorf("user %s: name %q is not a Chinese name", u.Username, u.Name)
		}
		if !units[u.Unit] {
			t.Errorf("user %s: unit %q is not in the tree", u.Username, u.Unit)
		}
		if role := syncproto.UnitLevel(u.Unit); u.Password != demo.Password(role) || u.Password == "" {
			t.Errorf("user %s: password is not the %s demo password", u.Username, role)
		}
		if u.Admin != nil || u.Active != nil {
			t.Errorf("user %s: admin %v, active %v; want plain active user", u.Username, u.Admin, u.Active)
		}
		byUnit[u.Unit] = append(byUnit[u.Unit], u)
	}

	if got := byUnit[demo.CityCode]; len(got) != 1 || got[0].Username != demo.CenterUsername {
		t.Errorf("city users: %+v, want one center user", got)
	}
	for _, c := range tree.Counties() {
		if got := byUnit[c]; len(got) != 1 || got[0].Username != demo.CountyUsername(c) {
			t.Errorf("county %s users: %+v", c, got)
		}
	}
	for _, tw := range tree.Townships() {
		if got := byUnit[tw]; len(got) != 1 || got[0].Username != demo.LeadUsername(tw) {
			t.Errorf("township %s users: %+v, want one lead", tw, got)
		}
	}
	villages := tree.Villages()
	two := 0
	for _, v := range villages {
		got := byUnit[v]
		switch len(got) {
		case 2:
			two++
			if got[1].Username != demo.CadreUsername(v, 2) {
				t.Errorf("village %s second cadre %q", v, got[1].Username)
			}
			fallthrough
		case 1:
			if got[0].Username != demo.CadreUsername(v, 1) {
				t.Errorf("village %s first cadre %q", v, got[0].Username)
			}
		default:
			t.Errorf("village %s has %d cadres, want 1 or 2", v, len(got))
		}
		if !reflect.DeepEqual(tree.UsersAt(v), got) {
			t.Errorf("UsersAt(%s) = %+v", v, tree.UsersAt(v))
		}
	}
	if share := float64(two) / float64(len(villages)); share < 0.28 || share > 0.38 {
		t.Errorf("%d of %d villages have two cadres, want about a third", two, len(villages))
	}
	if want := 1 + len(tree.Counties()) + len(tree.Townships()) + len(villages) + two; len(tree.Users) != want {
		t.Errorf("%d users, want %d", len(tree.Users), want)
	}

	if u, ok := tree.User("lead-411002001"); !ok || u.Unit != "411002001" {
		t.Errorf("User(lead-411002001) = %+v, %v", u, ok)
	}
	if u, ok := tree.User("cadre-411002001001-1"); !ok || u.Password != demo.VillagePassword {
		t.Errorf("User(cadre-411002001001-1) = %+v, %v", u, ok)
	}
}

func TestCity_Deterministic(t *testing.T) {
	if a, b := demo.City(7), demo.City(7); !reflect.DeepEqual(a, b) {
		t.Fatal("City(7) differs between calls")
	}
	if a, b := demo.City(1), demo.City(2); reflect.DeepEqual(a.Users, b.Users) {
		t.Fatal("City(1) and City(2) have the same users")
	}
}

func TestPassword(t *testing.T) {
	seen := map[string]bool{}
	for _, role := range []string{syncproto.RoleCenter, syncproto.RoleCounty, syncproto.RoleTownship, syncproto.RoleVillage} {
		p := demo.Password(role)
		if len(p) < 8 || seen[p] || strings.IndexFunc(p, unicode.IsSpace) >= 0 {
			t.Errorf("Password(%s) = %q", role, p)
		}
		seen[p] = true
	}
	if p := demo.Password("admin"); p != "" {
		t.Errorf("Password(admin) = %q, want none", p)
	}
}
