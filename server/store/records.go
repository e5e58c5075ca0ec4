package store

import (
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 18

// User is an account. PasswordHash is argon2id; it never leaves the server.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	Name         string    `json:"name"`
	Unit         string    `json:"unit"`
	Role         string    `json:"role"`
	Admin        bool      `json:"admin"`
	Active       bool      `json:"active"`
	PasswordHash string    `json:"password_hash"`
	Created      time.Time `json:"created"`
	Version      uint64    `json:"version"`
}

// Info is the user as the protocol describes it.
func (u *User) Info() syncproto.UserInfo {
	return syncproto.UserInfo{ID: u.ID, Username: u.Username, Name: u.Name, Role: u.Role, Unit: u.Unit, Admin: u.Admin}
}

// Directory is the user as a lead's pull shows it.
func (u *User) Directory() syncproto.DirectoryUser {
	return syncproto.DirectoryUser{ID: u.ID, Username: u.Username, Name: u.Name, Unit: u.Unit, Active: u.Active}
}

// Actor is the user acting from a device. It carries no session: the
// caller checked the device already.
func (u *User) Actor(deviceID string) syncproto.Actor {
	return syncproto.Actor{UserID: u.ID, Role: u.Role, Unit: u.Unit, DeviceID: deviceID}
}

// Device is a phone or browser a user signed in from.
type Device struct {
	ID            string `json:"id"`
	UserID        string `json:"user_id"`
	Name          string `json:"name"`
	Platform      string `json:"platform"`
	LastClientSeq uint64 `json:"last_client_seq"`
	Revoked       bool   `json:"revoked"`
	Wipe          bool   `json:"wipe"`
	// RefreshGen invalidates every refresh token of an older generation:
	// logout and reuse detection bump it.
	RefreshGen uint64    `json:"refresh_gen"`
	Created    time.Time `json:"created"`
	// LastSeen is when the device last pushed or pulled (pulls are
	// flushed from memory at most once a minute, see TouchDevices).
	// Schema 2 added it.
	LastSeen time.Time `json:"last_seen"`
	// Session numbers the device's sign-in session; access tokens carry
	// it and stop working once it changes. Ending the session (logout,
	// a refresh token used twice, revocation) gives the device a new
	// number (devices.go). 0 on a device no sign-in or refresh has
	// touched since sessions were numbered.
	Session uint64 `json:"session,omitempty"`
	// SessionEnds is when the session ends: the expiry of the newest
	// refresh token, or when it was ended. Zero when not known (a
	// device from before it was kept): such a device counts as signed
	// out until its next sign-in or refresh.
	SessionEnds time.Time `json:"session_ends,omitempty"`
	// LastAuth is when the device last signed in or refreshed its token.
	LastAuth time.Time `json:"last_auth,omitempty"`
	// Console marks a browser's session of the web console, not a phone:
	// it has a cap of its own and never counts toward the phone cap, its
	// session cannot outlive the lifetime it signed in with (SessionEnds
	// is not moved by a refresh), it ends when unheard of for Idle, and
	// once ended it is forgotten with its results (devices.go).
	Console bool          `json:"console,omitempty"`
	Idle    time.Duration `json:"idle,omitempty"`
	// Node is the cluster node whose console holds the session in its
	// memory (SignIn.Node); empty on one node and on sessions from
	// before clusters. A node that starts ends its own sessions only
	// (EndConsoleSessions).
	Node string `json:"node,omitempty"`
}

// RefreshToken is what the store keeps of a refresh token: its owner and
// whether it was used. The token itself is never stored, only its hash.
type RefreshToken struct {
	DeviceID string    `json:"device_id"`
	UserID   string    `json:"user_id"`
	Gen      uint64    `json:"gen"`
	Used     bool      `json:"used"`
	Expires  time.Time `json:"expires"`
	// UsedAt is when the token was spent and Next the hash of its
	// successor, the newest one after grace retries: a client that lost
	// the answer may present the token again while Next is unused and
	// UsedAt is within the grace window (Store.Refresh). A successor that
	// a grace retry retired is Used with no Next, so it never gets grace.
	// Records written before the grace existed lack both fields and
	// decode with them zero: no grace, as before; no migration needed.
	UsedAt time.Time `json:"used_at,omitempty"`
	Next   []byte    `json:"next,omitempty"`
}

// SigningKey is an Ed25519 key for access tokens, by its kid. Retired is
// when another key took over signing (zero while it signs): its tokens
// expire one access-token lifetime later.
type SigningKey struct {
	ID      string    `json:"id"`
	Seed    []byte    `json:"seed"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitempty"`
}

// Log entry kinds besides the op types of syncproto.
const (
	EntryUnit = "unit.upserted"
	EntryUser = "user.upserted"
)

// LogEntry is one record of the append-only log: an op as the server
// handled it, a warning the feed created, or a unit or user change.
type LogEntry struct {
	Seq        uint64                 `json:"seq"`
	Type       string                 `json:"type"`
	EntityID   string                 `json:"entity_id"`
	ActorID    string                 `json:"actor_id"`
	DeviceID   string                 `json:"device_id,omitempty"`
	ReceivedAt time.Time              `json:"received_at"`
	Op         *syncproto.Op          `json:"op,omitempty"`
	Feed       *syncproto.FeedWarning `json:"feed,omitempty"`
	Result     *syncproto.Result      `json:"result,omitempty"`
}

// BlobMeta describes a stored photo.
type BlobMeta struct {
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	UploadedBy  string    `json:"uploaded_by"`
	Created     time.Time `json:"created"`
}

// AuditEntry records one read of a warning's personal data through the
// query API: who, from which device, which warning (and its unit, so an
// admin sees only the reads of their unit), when.
type AuditEntry struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	DeviceID  string    `json:"device_id"`
	WarningID string    `json:"warning_id"`
	Unit      string    `json:"unit"`
	What      string    `json:"what"`
}
