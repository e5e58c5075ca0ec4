package syncproto

import "time"

// ProtocolVersion is the major version this package speaks; it travels in the
// Fieldsync-Protocol header.
const ProtocolVersion = "1"

// HeaderProtocol is the header naming the protocol's major version.
const HeaderProtocol = "Fieldsync-Protocol"

// Limits of PROTOCOL.md.
const (
	MaxPushOps       = 500
	DefaultPullLimit = 500
	MaxPullLimit     = 2000
	// MaxPullWait is the longest a pull may ask the server to hold it
	// waiting for a change (PullRequest.Wait), in seconds: under the
	// 60 s idle limit of common reverse proxies.
	MaxPullWait  = 50
	MaxBodyBytes = 1 << 20
	MaxBlobBytes = 8 << 20
	// FutureSkew is how far ahead of the server's clock an op's `at` may be
	// before it is flagged future_time.
	FutureSkew = 5 * time.Minute
)

// Actor is who makes an op: the token's user and device.
type Actor struct {
	UserID   string `json:"user_id"`
	Role     string `json:"role"`
	Unit     string `json:"unit"`
	DeviceID string `json:"device_id"`
	// Session is the device's sign-in session the access token belongs
	// to, which the server checks against the device's current one so
	// that a sign-out stops the token at once. 0 when the actor comes
	// from no token (the server's own work) and is not checked. It never
	// goes on the wire.
	Session uint64 `json:"-"`
}

// LoginRequest is the body of POST /v1/auth/login.
type LoginRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
	Platform   string `json:"platform"`
}

// RefreshRequest is the body of POST /v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
	DeviceID     string `json:"device_id"`
}

// UserInfo is the user as login and refresh describe it.
type UserInfo struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Unit     string `json:"unit"`
	Admin    bool   `json:"admin"`
}

// TokenResponse answers login and refresh.
type TokenResponse struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	ExpiresIn    int64    `json:"expires_in"`
	User         UserInfo `json:"user"`
}

// PushRequest is the body of POST /v1/sync/push.
type PushRequest struct {
	DeviceID string `json:"device_id"`
	Ops      []Op   `json:"ops"`
}

// Result statuses of a pushed op.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Result is the server's answer for one pushed op.
type Result struct {
	OpID      string `json:"op_id"`
	ClientSeq uint64 `json:"client_seq"`
	Status    string `json:"status"`
	Code      string `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	Version   uint64 `json:"version,omitempty"`
	Flags     []Flag `json:"flags,omitempty"`
}

// PushResponse answers a push.
type PushResponse struct {
	Results       []Result `json:"results"`
	LastClientSeq uint64   `json:"last_client_seq"`
	ServerSeq     uint64   `json:"server_seq"`
	// ReceivedAt is the server's clock when it applied the batch: the
	// time every op of it was stamped with (an attempt's received_at,
	// Env.Now). With each Result's Version it lets a client compute the
	// state the server made of its ops (PullRequest.Have). Zero from a
	// server before it.
	ReceivedAt time.Time `json:"received_at,omitempty"`
}

// PullRequest is the body of POST /v1/sync/pull.
type PullRequest struct {
	DeviceID string `json:"device_id"`
	Cursor   string `json:"cursor"`
	Limit    int    `json:"limit,omitempty"`
	// MaxBytes is the page's byte budget: the server stops adding changes
	// once their encoded size reaches it (a page always holds at least
	// one change when any is due). 0: no budget, Limit alone.
	MaxBytes int `json:"max_bytes,omitempty"`
	// Wait is how many seconds (at most MaxPullWait) the server may hold
	// the request when no change is due after Cursor, answering as soon
	// as one is committed in the device's scope: a long poll. 0: answer
	// at once.
	Wait int `json:"wait,omitempty"`
	// Detail is how much of each warning the pull carries: DetailFull
	// (also "") or DetailSummary.
	Detail string `json:"detail,omitempty"`
	// Have lists warnings the client believes it holds already at a
	// version, with the hash of their state (StateHash): the server
	// leaves out the puts that match and names them in
	// PullResponse.Kept. At most the page's limit of entries. Ignored
	// by a pull from "" or a reset, and with DetailSummary.
	Have []Have `json:"have,omitempty"`
}

// Have is a warning a client holds at Version, whose state hashes to
// Hash (StateHash), sent in a pull so the server need not send it again.
type Have struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
}

// Pull detail levels (PullRequest.Detail).
const (
	// DetailFull sends each warning whole.
	DetailFull = "full"
	// DetailSummary sends each warning as a list and its figures need
	// it (Warning.Summarize): for leads above a township, who watch
	// the loop and do not review each attempt, on links where every
	// byte counts. A warning's whole state is one GET /v1/warnings/{id}
	// away.
	DetailSummary = "summary"
)

// Change kinds and entities of a pull.
const (
	ChangePut    = "put"
	ChangeRemove = "remove"

	EntityWarning = "warning"
	EntityUnit    = "unit"
	EntityUser    = "user"
)

// Change is one record entering, changing in or leaving a device's scope.
// Data is a *Warning, *Unit or *DirectoryUser according to Entity; it is nil
// for a remove.
type Change struct {
	Kind    string `json:"kind"`
	Entity  string `json:"entity"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Data    any    `json:"data,omitempty"`
}

// PullResponse answers a pull.
type PullResponse struct {
	Changes       []Change `json:"changes"`
	Cursor        string   `json:"cursor"`
	More          bool     `json:"more"`
	Reset         bool     `json:"reset"`
	Remaining     int      `json:"remaining"`
	LastClientSeq uint64   `json:"last_client_seq"`
	// Kept names the PullRequest.Have entries whose put this page would
	// have carried and left out, the warning's version and state hash
	// being the ones the client sent: it keeps the state it has for
	// them, as if the page had carried it.
	Kept []string `json:"kept,omitempty"`
}

// DirectoryUser is a village user as township, county and center devices see
// it in their pull, for the assignment picker.
type DirectoryUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	Unit     string `json:"unit"`
	Active   bool   `json:"active"`
}

// FeedWarning is one row of the daily feed.
type FeedWarning struct {
	ExternalID string     `json:"external_id"`
	Name       string     `json:"name"`
	Phone      string     `json:"phone"`
	IDTail     string     `json:"id_tail"`
	Address    string     `json:"address"`
	Unit       string     `json:"unit"`
	FraudType  string     `json:"fraud_type"`
	Risk       string     `json:"risk"`
	WarnedAt   time.Time  `json:"warned_at"`
	Deadline   *time.Time `json:"deadline,omitempty"`
}

// FeedRequest is the JSON or MessagePack body of POST /v1/feed/warnings.
type FeedRequest struct {
	Warnings []FeedWarning `json:"warnings"`
}

// FeedCreated names a warning the feed created.
type FeedCreated struct {
	ExternalID string `json:"external_id"`
	ID         string `json:"id"`
}

// FeedInvalid reports a row the feed refused; Row counts from 1 (for CSV,
// the first data row after the header is 1).
type FeedInvalid struct {
	Row     int    `json:"row"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Problems is every problem of the row, where the server knows them
	// (an extension: Code and Message are the first, as before). Each
	// names its field, so a person fixes the whole row in one go.
	Problems []FeedProblem `json:"problems,omitempty"`
}

// FeedProblem is one problem of a refused feed row: the column at fault
// (empty when the row as a whole is), the reason (ReasonRequired and the
// other Reason constants, or empty) and a sentence in Simplified Chinese
// for the person who fixes the file.
type FeedProblem struct {
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// FeedResponse answers a feed import.
type FeedResponse struct {
	Created    []FeedCreated `json:"created"`
	Duplicates []string      `json:"duplicates"`
	Invalid    []FeedInvalid `json:"invalid"`
}

// UnitsRequest is the body of POST /v1/admin/units.
type UnitsRequest struct {
	Units []UnitInput `json:"units"`
}

// UnitInput is one unit to create or rename.
type UnitInput struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// UsersRequest is the body of POST /v1/admin/users.
type UsersRequest struct {
	Users []UserInput `json:"users"`
}

// UserInput is one user to create or update, by username. An update
// changes only the fields it names: an empty Password, Name or Unit and a
// missing Admin or Active keep what the user has, so changing a password
// never takes away an administrator's rights. A new user needs a password,
// a name and a unit; Active defaults to true and Admin to false.
type UserInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Name     string `json:"name"`
	Unit     string `json:"unit"`
	Admin    *bool  `json:"admin,omitempty"`
	Active   *bool  `json:"active,omitempty"`
}

// Reasons, in details.reason, that a change of users is refused with
// forbidden although the administrator may manage those users.
const (
	// ReasonOwnAccount: the change would disable, demote or move the
	// administrator making it. Another administrator may.
	ReasonOwnAccount = "own_account"
	// ReasonLastRootAdmin: the change would leave the root unit without
	// an active administrator, and nobody could manage the root unit's
	// users, rotate keys or take backups any more.
	ReasonLastRootAdmin = "last_root_admin"
)

// UnitsResponse answers POST /v1/admin/units.
type UnitsResponse struct {
	Units []Unit `json:"units"`
}

// UsersResponse answers POST /v1/admin/users.
type UsersResponse struct {
	Users []UserInfo `json:"users"`
}

// RevokeRequest is the body of POST /v1/admin/devices/{id}/revoke.
type RevokeRequest struct {
	Wipe bool `json:"wipe"`
}

// RevokeResponse answers a revoke.
type RevokeResponse struct {
	DeviceID string `json:"device_id"`
	Revoked  bool   `json:"revoked"`
	Wipe     bool   `json:"wipe"`
}

// Health answers GET /v1/healthz.
type Health struct {
	Status string `json:"status"`
	// Cluster is a node's view of its cluster, on readyz of a node of a
	// cluster only (an extension, docs/API.md).
	Cluster *ClusterHealth `json:"cluster,omitempty"`
}

// ClusterHealth is what readyz of a node of a cluster says of it.
type ClusterHealth struct {
	// Role is "leader", "follower", "candidate" or "stopped".
	Role string `json:"role"`
	// Leader is the leader's node id, empty when none is known.
	Leader string `json:"leader,omitempty"`
	// Quorum: the node leads, or follows a leader it hears from; without
	// it the node refuses writes (503 no_quorum) and serves reads.
	Quorum bool `json:"quorum"`
	// Lag is how many committed entries the node has yet to apply.
	Lag uint64 `json:"lag"`
	// AppliedIndex is the last entry the node applied.
	AppliedIndex uint64 `json:"applied_index"`
}

// BlobResponse answers PUT /v1/blobs/{sha256}.
type BlobResponse struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// FeedbackItem is one warning's outcome as the center reports it back to
// the national platform, keyed by the feed's external_id. It carries no
// personal data.
type FeedbackItem struct {
	ExternalID     string     `json:"external_id"`
	ID             string     `json:"id"`
	Unit           string     `json:"unit"`
	Status         string     `json:"status"`
	Outcome        string     `json:"outcome,omitempty"`
	Reached        bool       `json:"reached"`
	LossFen        int64      `json:"loss_fen"`
	Cadre          string     `json:"cadre,omitempty"`
	CadreName      string     `json:"cadre_name,omitempty"`
	WarnedAt       time.Time  `json:"warned_at"`
	FirstContactAt *time.Time `json:"first_contact_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	Version        uint64     `json:"version"`
}

// FeedbackResponse answers GET /v1/feedback: the warnings whose state
// changed after the cursor, in the order they changed.
type FeedbackResponse struct {
	Items  []FeedbackItem `json:"items"`
	Cursor string         `json:"cursor"`
	More   bool           `json:"more"`
}

// Figures are the loop's counts for one unit over warnings received in a
// date range. Minutes are whole minutes from warned_at.
type Figures struct {
	Received         int64   `json:"received"`
	Dispatched       int64   `json:"dispatched"`
	Assigned         int64   `json:"assigned"`
	Reached          int64   `json:"reached"`
	Dissuaded        int64   `json:"dissuaded"`
	AlreadyDefrauded int64   `json:"already_defrauded"`
	LossFen          int64   `json:"loss_fen"`
	NotTarget        int64   `json:"not_target"`
	Unreachable      int64   `json:"unreachable"`
	Refused          int64   `json:"refused"`
	Resolved         int64   `json:"resolved"`
	Closed           int64   `json:"closed"`
	Overdue          int64   `json:"overdue"`
	ClosureRate      float64 `json:"closure_rate"`
	// FirstContact and Resolution give median and p90 minutes from the
	// warning to the first contact and to the resolution, over the
	// warnings that got there.
	FirstContact Quantiles `json:"first_contact_minutes"`
	Resolution   Quantiles `json:"resolution_minutes"`
	// Closing gives them from the warning to its closing (the approving
	// review), over the warnings closed.
	Closing Quantiles `json:"close_minutes"`
}

// Quantiles are nearest-rank quantiles of a set of minutes; N is its size.
type Quantiles struct {
	N      int64 `json:"n"`
	Median int64 `json:"median"`
	P90    int64 `json:"p90"`
}

// UnitFigures are one unit's figures.
type UnitFigures struct {
	Unit    string  `json:"unit"`
	Name    string  `json:"name"`
	Figures Figures `json:"figures"`
}

// DayFigures are one day's figures (a day in Beijing time, YYYY-MM-DD).
type DayFigures struct {
	Day     string  `json:"day"`
	Figures Figures `json:"figures"`
}

// StatsResponse answers GET /v1/stats: the unit's figures over the range,
// each child unit's, and the unit's daily series.
type StatsResponse struct {
	Unit     string        `json:"unit"`
	Name     string        `json:"name"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Total    Figures       `json:"total"`
	Children []UnitFigures `json:"children"`
	Daily    []DayFigures  `json:"daily"`
	// Types are the unit's counts by fraud type over the range, most
	// received first: the scalar counts only (no overdue, no minutes).
	Types []TypeFigures `json:"types"`
}

// TypeFigures are the counts of one fraud type.
type TypeFigures struct {
	FraudType string  `json:"fraud_type"`
	Figures   Figures `json:"figures"`
}

// WarningItem is a warning as a list shows it.
type WarningItem struct {
	ID         string    `json:"id"`
	ExternalID string    `json:"external_id"`
	Name       string    `json:"name"`
	Phone      string    `json:"phone"`
	Address    string    `json:"address"`
	Unit       string    `json:"unit"`
	FraudType  string    `json:"fraud_type"`
	Risk       string    `json:"risk"`
	Status     string    `json:"status"`
	Assignee   string    `json:"assignee,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Escalated  bool      `json:"escalated"`
	OpenFlags  int       `json:"open_flags"`
	Overdue    bool      `json:"overdue"`
	WarnedAt   time.Time `json:"warned_at"`
	ReceivedAt time.Time `json:"received_at"`
	Deadline   time.Time `json:"deadline"`
	Version    uint64    `json:"version"`
}

// WarningList answers GET /v1/warnings. A page may hold fewer items than
// asked while More is true: each request examines a bounded number of
// warnings, so a filter that matches few of them never costs a full scan;
// the client asks again with Cursor.
type WarningList struct {
	Items  []WarningItem `json:"items"`
	Cursor string        `json:"cursor"`
	More   bool          `json:"more"`
}
