package syncproto

// The server's policies around Apply: who may read a warning, and what the
// server does with an op before and after Apply decides it. They are pure,
// like Apply, and the store calls them inside its transaction, so each has
// one answer whichever part of the server asks.

// CanRead reports whether a's scope holds w (PROTOCOL.md section 5): for a
// village user, w is theirs (HeldBy); for everyone else, w's unit lies in
// their unit's subtree. A former assignee may still record on w (section
// 6) but no longer reads it. Whoever may not read w is told it does not
// exist.
func CanRead(a Actor, w *Warning) bool {
	if a.Role == RoleVillage {
		return w.HeldBy(a.UserID)
	}
	return InScope(a.Unit, w.Unit)
}

// HeldBy reports whether w is in the scope of the village user userID: it
// is assigned to them and not archived, since an archived warning has left
// its cadre's phone (retention). The server's scope buckets follow it: w is
// in the bucket of its assignee exactly while its assignee holds it.
func (w *Warning) HeldBy(userID string) bool {
	return userID != "" && w.Assignee == userID && w.ArchivedAt == nil
}
