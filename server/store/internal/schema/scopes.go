package schema

import (
	"bytes"

	"github.com/fieldsync/fieldsync/syncproto"
)

// UnitScopePrefix begins the name of a unit's scope index (idx/<scope>);
// a user's begins with "user/".
const UnitScopePrefix = "unit/"

// PulledUnit reports whether some device pulls unit code's scope index: a
// township's, a county's, a city's, whose leads pull their unit's. A
// village's cadres pull their own user scope instead (store.ScopeOf), and
// nothing else reads a village's unit scope, so from schema 10 on the store
// keeps none: it would be written by every op and never read.
func PulledUnit(code string) bool {
	return syncproto.UnitLevel(code) != syncproto.RoleVillage
}

// PulledScope reports whether the scope index named scope is one the
// store keeps (schema 10 on): every user's, and a unit's when PulledUnit.
func PulledScope(scope []byte) bool {
	code, ok := bytes.CutPrefix(scope, []byte(UnitScopePrefix))
	return !ok || PulledUnit(string(code))
}
