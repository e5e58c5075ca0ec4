package store

import (
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Index entry kinds and entities, one byte each in the value
// (schema.IndexValue, which writes a warning's id as 16 bytes).
const (
	idxPut    byte = schema.IdxPut
	idxRemove byte = schema.IdxRemove

	entWarning byte = schema.RecWarning
	entUnit    byte = 'u'
	entUser    byte = 's'
)

// UnitScope and UserScope name scope buckets: a lead's device pulls its
// unit's bucket, a village cadre's its own. A village unit has no bucket
// (unitPulled).
func UnitScope(code string) string { return schema.UnitScopePrefix + code }

// UserScope names the bucket of what is assigned to a user.
func UserScope(userID string) string { return "user/" + userID }

// ScopeOf is the bucket a user's devices pull.
func ScopeOf(u *User) string {
	if u.Role == syncproto.RoleVillage {
		return UserScope(u.ID)
	}
	return UnitScope(u.Unit)
}

// unitPulled reports whether some device pulls unit code's bucket: a
// lead's (township and up) is pulled, a village's is not, since its
// cadres pull their own (ScopeOf). The store writes no bucket that nobody
// pulls (schema 10 on); schema.PulledUnit is the one rule, which the
// schema 10 upgrade and the check apply too.
func unitPulled(code string) bool { return schema.PulledUnit(code) }

// warningScopes lists the buckets a warning belongs to: its unit and each
// ancestor that some device pulls (unitPulled), and its assignee while the
// assignee holds it (syncproto.Warning.HeldBy: not once it is archived).
func warningScopes(w *syncproto.Warning) []string {
	scopes := unitScopes(w.Unit)
	if w.HeldBy(w.Assignee) {
		scopes = append(scopes, UserScope(w.Assignee))
	}
	return scopes
}

// unitScopes lists the buckets whose pull carries a unit or a village user
// of that unit: the unit's own and its ancestors', those some device pulls
// (unitPulled). Room is left for a warning's assignee.
func unitScopes(code string) []string {
	chain := syncproto.UnitChain(code)
	scopes := make([]string, 0, len(chain)+1)
	for _, c := range chain {
		if unitPulled(c) {
			scopes = append(scopes, UnitScope(c))
		}
	}
	return scopes
}

// indexMove writes a put into every bucket of after and a remove into every
// bucket of before that after lacks, and makes them the record's latest
// entries in those scopes (latest.go). It is the only writer of the scope
// indexes, and notes the scopes it wrote into, whose held pulls the commit
// wakes (notify.go). It runs on the writer goroutine.
func (s *Store) indexMove(tx *bolt.Tx, seq uint64, entity byte, id string, before, after []string) error {
	rec := make([]byte, 1+len(id))
	rec[0] = entity
	copy(rec[1:], id)
	touched := make([]string, 0, len(before)+len(after))
	for _, scope := range after {
		if err := indexPut(tx, scope, seq, idxPut, rec); err != nil {
			return err
		}
		touched = append(touched, scope)
	}
outer:
	for _, scope := range before {
		for _, a := range after {
			if a == scope {
				continue outer
			}
		}
		if err := indexPut(tx, scope, seq, idxRemove, rec); err != nil {
			return err
		}
		touched = append(touched, scope)
	}
	for _, scope := range touched {
		s.touched[scope] = struct{}{}
	}
	return setLatest(tx, rec, seq, touched)
}

// indexPut appends an entry for rec (entity byte + id) to a scope's index,
// in the compact form schema.IndexValue gives.
func indexPut(tx *bolt.Tx, scope string, seq uint64, kind byte, rec []byte) error {
	b, err := tx.Bucket(schema.BucketIdx).CreateBucketIfNotExists([]byte(scope))
	if err != nil {
		return err
	}
	// Index keys are appended in order: filling pages fully keeps the
	// file small.
	b.FillPercent = 1.0
	return b.Put(schema.U64(seq), schema.IndexValue(kind, rec))
}
