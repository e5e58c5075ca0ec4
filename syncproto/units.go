package syncproto

import "strings"

// Roles follow a user's unit level (PROTOCOL.md section 5).
const (
	RoleCenter   = "center"
	RoleCounty   = "county"
	RoleTownship = "township"
	RoleVillage  = "village"
)

// Unit code lengths of the administrative tree: city 4 digits, county 6,
// township 9, village 12.
var levelLengths = map[int]string{4: RoleCenter, 6: RoleCounty, 9: RoleTownship, 12: RoleVillage}

// Unit is a node of the tree city > county > township > village.
type Unit struct {
	Code  string `json:"code"`
	Name  string `json:"name"`
	Level string `json:"level"`
}

// UnitLevel returns the role whose level a code has ("center", "county",
// "township", "village"), or "" when code is not a valid unit code.
func UnitLevel(code string) string {
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return ""
		}
	}
	return levelLengths[len(code)]
}

// ParentCode is the code of the unit above code, or "" for a city.
func ParentCode(code string) string {
	switch len(code) {
	case 6:
		return code[:4]
	case 9:
		return code[:6]
	case 12:
		return code[:9]
	}
	return ""
}

// UnitChain lists code and each of its ancestors, nearest first.
func UnitChain(code string) []string {
	chain := make([]string, 0, 4)
	for c := code; c != ""; c = ParentCode(c) {
		chain = append(chain, c)
	}
	return chain
}

// InScope reports whether unit lies in the scope of scope: the unit itself or
// any unit below it.
func InScope(scope, unit string) bool {
	return scope != "" && strings.HasPrefix(unit, scope)
}

// IsManager reports whether role may dispatch, assign and review.
func IsManager(role string) bool {
	return role == RoleTownship || role == RoleCounty || role == RoleCenter
}

// ValidRole reports whether role is one of the four roles.
func ValidRole(role string) bool {
	return role == RoleVillage || IsManager(role)
}
