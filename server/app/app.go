package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/uploads"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Config tunes token lifetimes and retention.
type Config struct {
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// RefreshGrace is how long after a refresh token is spent the same
	// token may be presented again, while its successor is unused, and
	// get a new pair instead of ending the device's chain: the answer to
	// a refresh is lost often on 2G (PROTOCOL.md section 3).
	// DefaultRefreshGrace when 0; NoRefreshGrace (any negative) turns it
	// off.
	RefreshGrace time.Duration
	// CadreRetention is how long after closing a warning stays on its
	// cadre's phone; RedactAfter when its personal data is erased.
	CadreRetention time.Duration
	RedactAfter    time.Duration
	// Metrics counts pushes, pulls, feed rows and authentication
	// failures; nil counts nothing.
	Metrics *metrics.Metrics
	// Lockout throttles failed sign-ins per username and per address.
	Lockout Lockout
	// TombstoneHorizon is how old a remove entry must be for index
	// compaction to drop it; a device away longer resets (upkeep.go).
	TombstoneHorizon time.Duration
	// UploadExpiry is how long an unfinished photo upload may stay
	// untouched before the upkeep deletes it; MaxUploadsPerDevice caps a
	// device's unfinished uploads (uploads.go). The uploads package's
	// defaults when 0.
	UploadExpiry        time.Duration
	MaxUploadsPerDevice int
	// OrphanPhotoGrace is how long a photo that no attempt names is kept
	// before the upkeep deletes it (SweepPhotos);
	// store.DefaultOrphanPhotoGrace when 0.
	OrphanPhotoGrace time.Duration
	// ConsoleIdle ends a console session unused this long, and
	// ConsoleLifetime any console session this long after its sign-in
	// (console.go); DefaultConsoleIdle and DefaultConsoleLifetime when 0.
	ConsoleIdle     time.Duration
	ConsoleLifetime time.Duration
	// NodeID is this node's id in a cluster, empty on one node: a console
	// session records the node whose memory holds it, and a node that
	// starts ends only its own (EndConsoleSessions).
	NodeID string
	// Leads reports whether this node is the cluster's leader; nil on one
	// node, which always leads. The upkeep that decides for the whole
	// store (retention, compaction, device expiry, the photo sweep) runs
	// on the leader only; what is the node's own (its pull sightings, its
	// unfinished uploads) runs on every node (upkeep.go).
	Leads func() bool
	// CatchUp, on a node of a cluster, returns once this node's store has
	// applied what the cluster's leader had applied, or an error when it
	// cannot tell (no leader) or ctx ends first; nil on one node. A
	// sign-in that fails here may fail only because this node has not yet
	// applied the account, password or re-enabling an admin just saved
	// through another node: it catches up, bounded by signInCatchUp, and
	// checks again before it counts as a failure (checkPassword).
	CatchUp func(ctx context.Context) error
}

// App is the service. Create it with New. Its store is its own: the HTTP
// layer and the console reach it only through the methods below, so every
// read and write passes the service's checks.
type App struct {
	store  *store.Store
	issuer *auth.Issuer
	log    *slog.Logger
	cfg    Config
	tokens *tokenCache
	// signins throttles failed sign-ins (lockout.go).
	signins *signins
	// rotating serializes key rotations (keys.go).
	rotating sync.Mutex
	// backingUp lets one backup run at a time (backup.go).
	backingUp sync.Mutex
	seen      *sightings
	// uploads keeps the resumable photo uploads (uploads.go).
	uploads *uploads.Service
	// draining is closed by Drain: held pulls answer at once.
	draining  chan struct{}
	drainOnce sync.Once
}

// New loads (or creates) the signing keys from st and returns the service.
func New(ctx context.Context, st *store.Store, cfg Config, log *slog.Logger) (*App, error) {
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.RefreshGrace == 0 {
		cfg.RefreshGrace = DefaultRefreshGrace
	}
	if cfg.CadreRetention <= 0 {
		cfg.CadreRetention = store.DefaultCadreRetention
	}
	if cfg.RedactAfter <= 0 {
		cfg.RedactAfter = store.DefaultRedactAfter
	}
	if cfg.TombstoneHorizon <= 0 {
		cfg.TombstoneHorizon = store.DefaultTombstoneHorizon
	}
	if cfg.OrphanPhotoGrace <= 0 {
		cfg.OrphanPhotoGrace = store.DefaultOrphanPhotoGrace
	}
	if cfg.ConsoleIdle <= 0 {
		cfg.ConsoleIdle = DefaultConsoleIdle
	}
	if cfg.ConsoleLifetime <= 0 {
		cfg.ConsoleLifetime = DefaultConsoleLifetime
	}
	if log == nil {
		log = slog.Default()
	}
	stored, active, err := st.SigningKeys(ctx, func() (store.SigningKey, error) {
		k, err := auth.NewKey(st.Now())
		if err != nil {
			return store.SigningKey{}, err
		}
		return toStored(k), nil
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	issuer, err := auth.NewIssuer(authKeys(stored), active, cfg.AccessTTL, st.Now)
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	signins := newSignins(cfg.Lockout, st.Now)
	signins.exists = func(username string) bool {
		u, err := st.UserByUsername(username)
		if err != nil {
			// Counted as an account's: its lockout is then never
			// forgotten to make room, which is the safe side.
			log.Error("look up a locked-out username", "err", err)
			return true
		}
		return u != nil
	}
	ups, err := uploads.New(uploads.Config{
		Dir: filepath.Join(st.Dir(), UploadsDir), Expiry: cfg.UploadExpiry, MaxPerDevice: cfg.MaxUploadsPerDevice, Now: st.Now,
	}, st)
	if err != nil {
		return nil, err
	}
	a := &App{store: st, issuer: issuer, log: log, cfg: cfg, tokens: newTokenCache(50_000), signins: signins, seen: newSightings(),
		uploads: ups, draining: make(chan struct{})}
	// A rotation on another node of a cluster reaches this store through
	// the log: sign and verify with the keys the store holds from then on.
	st.OnSigningKeys(a.followKeys)
	// And any key the log brought between the read above and now: the
	// founding nodes of a cluster start together, and each may make a
	// first key before it sees another's (the child-process cluster test
	// found tokens of one node refused on another until it restarted).
	a.followKeys()
	return a, nil
}

// authKeys are the stored signing keys as the issuer holds them.
func authKeys(stored []store.SigningKey) []auth.Key {
	keys := make([]auth.Key, len(stored))
	for i, k := range stored {
		keys[i] = auth.Key{ID: k.ID, Private: ed25519.NewKeyFromSeed(k.Seed), Created: k.Created, Retired: k.Retired}
	}
	return keys
}

func toStored(k auth.Key) store.SigningKey {
	return store.SigningKey{ID: k.ID, Seed: k.Private.Seed(), Created: k.Created}
}

// Principal is an authenticated caller.
type Principal struct {
	Actor syncproto.Actor
	Admin bool
}

// Authenticate checks an access token strictly and the device and user it
// names: unauthorized for a bad token, token_expired (also for a token
// whose session was ended by a sign-out or a refresh token used twice),
// device_revoked, or forbidden for a device not the user's. Role and unit
// come from the stored user, so a change takes effect at once.
func (a *App) Authenticate(token string) (Principal, error) {
	p, err := a.VerifyToken(token)
	if err != nil {
		return Principal{}, err
	}
	check, err := a.store.CheckDevice(p.Actor)
	if err != nil {
		a.countAuthFailure(err, metrics.AuthAccountDisabled)
		return Principal{}, err
	}
	actor := check.User.Actor(p.Actor.DeviceID)
	// Kept, so that a push made with this principal checks the session
	// again in its own transaction.
	actor.Session = p.Actor.Session
	return Principal{Actor: actor, Admin: check.User.Admin}, nil
}

// VerifyToken checks an access token's signature and claims only, with a
// cache of tokens already verified. The Principal it returns carries the
// token's claims: callers must check the device, its session and the user
// in the store (as Push and Pull do in their transaction) before trusting
// it. The cache holds only what the token says, never whether its session
// is still open, so a session ended stops a cached token as well.
func (a *App) VerifyToken(token string) (Principal, error) {
	claims, err := a.tokens.verify(token, a.store.Now(), a.issuer.Verify)
	if err != nil {
		a.countAuthFailure(err, metrics.AuthBadToken)
		return Principal{}, err
	}
	return Principal{Actor: claims.Actor(), Admin: claims.Admin}, nil
}

// Login checks a password and registers the device. Unknown users and wrong
// passwords get the same answer, in the same time. Repeated failures lock
// the username, and fail the address, for a while (rate_limited, see
// lockout.go), before any password is checked.
func (a *App) Login(ctx context.Context, req *syncproto.LoginRequest) (*syncproto.TokenResponse, error) {
	if err := validateLogin(req); err != nil {
		return nil, err
	}
	u, err := a.checkPassword(ctx, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	return a.signIn(ctx, u, store.SignIn{DeviceID: req.DeviceID, Name: req.DeviceName, Platform: req.Platform, RefreshTTL: a.cfg.RefreshTTL})
}

// checkPassword returns the active user of username when password is
// theirs, throttled by the lockout.
func (a *App) checkPassword(ctx context.Context, username, password string) (*store.User, error) {
	attempt, err := a.signins.begin(ctx, username)
	if err != nil {
		a.cfg.Metrics.AuthFailure(metrics.AuthLockedOut)
		return nil, err
	}
	u, ok, err := a.passwordMatches(username, password)
	if err == nil && !ok && a.cfg.CatchUp != nil {
		u, ok, err = a.checkAfterCatchUp(ctx, u, username, password)
	}
	if err != nil {
		// The attempt stays charged, as a failure's would.
		return nil, err
	}
	// An unknown username, a wrong password and a disabled account are one
	// failure to the caller and to the metrics: nothing tells which
	// usernames exist.
	if !ok {
		a.cfg.Metrics.AuthFailure(metrics.AuthBadCredentials)
		attempt.failed()
		return nil, errBadLogin
	}
	attempt.succeeded()
	return u, nil
}

// passwordMatches reads username's user and reports whether password is
// theirs and the account active. An unknown username costs the same
// hashing, so that its answer takes as long as a wrong password's.
func (a *App) passwordMatches(username, password string) (*store.User, bool, error) {
	u, err := a.store.UserByUsername(username)
	if err != nil {
		return nil, false, err
	}
	if u == nil {
		auth.DummyCheck(password)
		return nil, false, nil
	}
	// The password first: a disabled account's answer takes as long.
	return u, auth.CheckPassword(u.PasswordHash, password) && u.Active, nil
}

// signInCatchUp bounds how long a failed sign-in on a node of a cluster
// waits for the node to catch up with the leader (Config.CatchUp).
const signInCatchUp = 2 * time.Second

// checkAfterCatchUp checks a sign-in that failed on seen (the user as this
// node read it, nil when unknown) again once this node has caught up with
// its cluster: an admin may have made the account, set the password or
// re-enabled it through another node a moment ago, and the cadre sign in
// here before this node applied it. Only a user that changed meanwhile is
// checked again; one that did not fails as it did, with no second hash.
// When the node cannot catch up (no quorum) it answers from what it has,
// as one node does.
//
// The wait adds nothing an attacker can learn from: it happens only on a
// follower and only after a failure, which already cost a password hash,
// and it lasts as long for an unknown username as for a wrong password.
func (a *App) checkAfterCatchUp(ctx context.Context, seen *store.User, username, password string) (*store.User, bool, error) {
	wait, cancel := context.WithTimeout(ctx, signInCatchUp)
	err := a.cfg.CatchUp(wait)
	cancel()
	if err != nil {
		// Without the username: it is personal data.
		a.log.Debug("a failed sign-in could not catch up with the cluster", "err", err)
	}
	// Read again even after an error: a wait cut short may still have
	// applied the change.
	u, err := a.store.UserByUsername(username)
	switch {
	case err != nil:
		return nil, false, err
	case u == nil || sameCredentials(seen, u):
		return u, false, nil
	}
	return u, auth.CheckPassword(u.PasswordHash, password) && u.Active, nil
}

// sameCredentials reports whether a sign-in checked against was would
// fail against is as well: the same account, password and active flag.
func sameCredentials(was, is *store.User) bool {
	return was != nil && was.ID == is.ID && was.PasswordHash == is.PasswordHash && was.Active == is.Active
}

// signIn stores a sign-in of u (in.RefreshHash is filled here) and issues
// its token pair.
func (a *App) signIn(ctx context.Context, u *store.User, in store.SignIn) (*syncproto.TokenResponse, error) {
	token, hash, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	in.RefreshHash = hash
	sess, err := a.store.Login(ctx, u, in)
	if err != nil {
		a.countAuthFailure(err, metrics.AuthAccountDisabled)
		return nil, err
	}
	return a.tokenPair(sess, in.DeviceID, token)
}

var errBadLogin = syncproto.Errorf(syncproto.CodeUnauthorized, "wrong username or password")

// Login field limits, in bytes. A password longer than any stored one could
// be only costs hashing time.
const (
	maxUsernameBytes   = 64
	maxDeviceNameRunes = 100
	maxPlatformBytes   = 50
)

// validateLogin checks a login's fields, saying for each which way it is
// wrong: missing or too long.
func validateLogin(req *syncproto.LoginRequest) *syncproto.Error {
	switch {
	case req.Username == "":
		return syncproto.InvalidField("username", "username is required")
	case len(req.Username) > maxUsernameBytes:
		return syncproto.InvalidField("username", "username is longer than %d bytes", maxUsernameBytes)
	case req.Password == "":
		return syncproto.InvalidField("password", "password is required")
	case len(req.Password) > auth.MaxPasswordBytes:
		return syncproto.InvalidField("password", "password is longer than %d bytes", auth.MaxPasswordBytes)
	case req.DeviceID == "":
		return syncproto.InvalidField("device_id", "device_id is required")
	case !syncproto.ValidUUID(req.DeviceID):
		return syncproto.InvalidField("device_id", "device_id must be a lowercase UUID")
	case utf8.RuneCountInString(req.DeviceName) > maxDeviceNameRunes:
		return syncproto.InvalidField("device_name", "device_name is longer than %d characters", maxDeviceNameRunes)
	case len(req.Platform) > maxPlatformBytes:
		return syncproto.InvalidField("platform", "platform is longer than %d bytes", maxPlatformBytes)
	}
	return nil
}

// DefaultRefreshGrace is the refresh grace window when Config leaves it 0.
// A phone on 2G that lost a refresh answer retries after its backoff, or
// minutes later when the link comes back; the window closes early anyway
// at the successor's first use, which is all the time an honest client
// needs, so its length matters only while a spent token is unanswered.
const DefaultRefreshGrace = 5 * time.Minute

// NoRefreshGrace as Config.RefreshGrace turns the grace off: every second
// use of a refresh token ends the device's chain.
const NoRefreshGrace time.Duration = -1

// maxRefreshTokenBytes bounds a refresh token as a client may send it; the
// server's own are far shorter.
const maxRefreshTokenBytes = 256

// Refresh rotates a refresh token: each works once, and a second use ends
// the device's chain, unless it is a retry within the grace window of a
// refresh whose answer was lost (store.Store.Refresh says when).
//
// On a node of a cluster it needs no catching up (Config.CatchUp), unlike
// a sign-in: the token is checked by the write that spends it, applied on
// every node at its place in the log, after the sign-in or the refresh
// that made the token, however far behind this node was when asked.
func (a *App) Refresh(ctx context.Context, req *syncproto.RefreshRequest) (*syncproto.TokenResponse, error) {
	if req.RefreshToken == "" {
		return nil, syncproto.InvalidField("refresh_token", "refresh_token is required")
	}
	if len(req.RefreshToken) > maxRefreshTokenBytes {
		return nil, syncproto.InvalidField("refresh_token", "refresh_token is longer than %d bytes: it is not one this server issued", maxRefreshTokenBytes)
	}
	if !syncproto.ValidUUID(req.DeviceID) {
		return nil, syncproto.InvalidField("device_id", "device_id must be a lowercase UUID")
	}
	token, hash, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	sess, err := a.store.Refresh(ctx, auth.HashRefreshToken(req.RefreshToken), req.DeviceID, hash, a.cfg.RefreshTTL, a.cfg.RefreshGrace)
	if err != nil {
		a.countAuthFailure(err, metrics.AuthRefreshInvalid)
		return nil, err
	}
	if sess.Graced {
		a.cfg.Metrics.RefreshGraced()
	}
	return a.tokenPair(sess, req.DeviceID, token)
}

// tokenPair issues the access token of a session, which carries the
// session's number so that ending the session stops it at once.
func (a *App) tokenPair(sess store.Session, deviceID, refresh string) (*syncproto.TokenResponse, error) {
	u := sess.User
	access, ttl, err := a.issuer.Issue(auth.Claims{UserID: u.ID, Role: u.Role, Unit: u.Unit, DeviceID: deviceID, Admin: u.Admin, Session: sess.Number})
	if err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	return &syncproto.TokenResponse{AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(ttl / time.Second), User: u.Info()}, nil
}

// Logout ends the caller's device's session: its refresh chain, and its
// access tokens at once.
func (a *App) Logout(ctx context.Context, p Principal) error {
	return a.store.Logout(ctx, p.Actor.DeviceID)
}

// Push applies a device's ops. The body's device must be the token's.
func (a *App) Push(ctx context.Context, p Principal, req *syncproto.PushRequest) (*syncproto.PushResponse, error) {
	if err := sameDevice(p, req.DeviceID); err != nil {
		a.countAuthFailure(err, metrics.AuthForbiddenDevice)
		return nil, err
	}
	if len(req.Ops) > syncproto.MaxPushOps {
		return nil, syncproto.Errorf(syncproto.CodePayloadTooLarge, "a push holds at most %d ops; split the batch", syncproto.MaxPushOps)
	}
	if req.Ops == nil {
		return nil, syncproto.InvalidField("ops", "ops is required")
	}
	resp, err := a.store.Push(ctx, p.Actor, req.Ops)
	if err != nil {
		a.countAuthFailure(err, metrics.AuthAccountDisabled)
		return nil, err
	}
	a.cfg.Metrics.Pushed(p.Actor.DeviceID, req.Ops, resp.Results)
	return resp, nil
}

// Pull returns the changes in the caller's scope after a cursor, holding
// the request up to req.Wait seconds when none is due (a long poll). It
// returns invalid_request for a bad limit, max_bytes, wait or have, and what
// Store.Pull returns.
func (a *App) Pull(ctx context.Context, p Principal, req *syncproto.PullRequest) (*syncproto.PullResponse, error) {
	if err := sameDevice(p, req.DeviceID); err != nil {
		a.countAuthFailure(err, metrics.AuthForbiddenDevice)
		return nil, err
	}
	if req.Limit < 0 || req.Limit > syncproto.MaxPullLimit {
		return nil, syncproto.InvalidField("limit", "limit must be between 1 and %d", syncproto.MaxPullLimit)
	}
	if req.MaxBytes < 0 {
		return nil, syncproto.InvalidField("max_bytes", "max_bytes must be 0 (no budget) or a number of bytes")
	}
	if req.Wait < 0 || req.Wait > syncproto.MaxPullWait {
		return nil, syncproto.InvalidField("wait", "wait must be between 0 and %d seconds", syncproto.MaxPullWait)
	}
	if req.Detail != "" && req.Detail != syncproto.DetailFull && req.Detail != syncproto.DetailSummary {
		return nil, syncproto.InvalidField("detail", "detail must be %q or %q", syncproto.DetailFull, syncproto.DetailSummary)
	}
	if err := validHave(req.Have, req.Limit); err != nil {
		return nil, err
	}
	resp, err := a.store.Pull(ctx, p.Actor, store.PullPage{Cursor: req.Cursor, Limit: req.Limit, MaxBytes: req.MaxBytes,
		Wait: time.Duration(req.Wait) * time.Second, Summary: req.Detail == syncproto.DetailSummary, Release: a.draining,
		Have: req.Have})
	if err != nil {
		a.countAuthFailure(err, metrics.AuthAccountDisabled)
		return nil, err
	}
	a.seen.note(p.Actor.DeviceID, a.store.Now())
	a.cfg.Metrics.Pulled(p.Actor.DeviceID, resp)
	return resp, nil
}

// Now is the service's clock: the store's.
func (a *App) Now() time.Time { return a.store.Now() }

// Ready reports whether the service can take work: its store is open and
// readable. The error (a file error) is for the log, not for a client.
func (a *App) Ready() error { return a.store.Ready() }

// Drain answers the pulls held waiting for a change (PullRequest.Wait) at
// once, and makes later ones answer without waiting: for a server about to
// stop, whose held pulls would otherwise keep it up to their whole wait.
// Pulls go on being served.
func (a *App) Drain() {
	a.drainOnce.Do(func() { close(a.draining) })
}

// validHave checks a pull's have: at most its page's limit of entries,
// each a warning id, a version and a StateHash.
func validHave(have []syncproto.Have, limit int) error {
	if limit == 0 {
		limit = syncproto.DefaultPullLimit
	}
	if len(have) > limit {
		return syncproto.InvalidField("have", "have holds at most limit (%d) entries", limit)
	}
	for i, h := range have {
		switch {
		case !syncproto.ValidUUID(h.ID):
			return syncproto.InvalidField(fmt.Sprintf("have[%d].id", i), "have[%d].id must be a warning id", i)
		case h.Version == 0:
			return syncproto.InvalidField(fmt.Sprintf("have[%d].version", i), "have[%d].version must be the warning's version", i)
		case !syncproto.ValidStateHash(h.Hash):
			return syncproto.InvalidField(fmt.Sprintf("have[%d].hash", i), "have[%d].hash must be %d lowercase hex digits", i, syncproto.StateHashLen)
		}
	}
	return nil
}

func sameDevice(p Principal, deviceID string) error {
	if deviceID == "" {
		return syncproto.InvalidField("device_id", "device_id is required")
	}
	if deviceID != p.Actor.DeviceID {
		return syncproto.Errorf(syncproto.CodeForbidden, "device_id is not the device this token was issued to")
	}
	return nil
}

// ImportFeed imports warnings; center users and admins may.
func (a *App) ImportFeed(ctx context.Context, p Principal, rows []store.FeedRow) (*syncproto.FeedResponse, error) {
	if err := CanImportFeed(p); err != nil {
		return nil, err
	}
	if len(rows) > 100_000 {
		return nil, syncproto.Errorf(syncproto.CodePayloadTooLarge, "a feed holds at most 100000 warnings; split it")
	}
	resp, err := a.store.ImportFeed(ctx, p.Actor, rows)
	if err != nil {
		return nil, err
	}
	a.cfg.Metrics.FeedImported(resp)
	return resp, nil
}

// CanImportFeed returns forbidden unless p may import the warning feed:
// the center and administrators. ImportFeed checks it; the API and the
// console ask it before they read a feed file, so nobody else can make the
// server read one.
func CanImportFeed(p Principal) error {
	if p.Actor.Role != syncproto.RoleCenter && !p.Admin {
		return syncproto.Errorf(syncproto.CodeForbidden, "only the center imports the warning feed")
	}
	return nil
}

// UpsertUnits creates or renames units; admins only.
func (a *App) UpsertUnits(ctx context.Context, p Principal, req *syncproto.UnitsRequest) (*syncproto.UnitsResponse, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if len(req.Units) == 0 || len(req.Units) > 10_000 {
		return nil, syncproto.InvalidField("units", "send between 1 and 10000 units")
	}
	units, err := a.store.UpsertUnits(ctx, p.Actor, req.Units)
	if err != nil {
		return nil, err
	}
	return &syncproto.UnitsResponse{Units: units}, nil
}

// UpsertUsers creates or updates users; admins only. An update changes
// only the fields it names (syncproto.UserInput). Passwords are hashed
// here and never stored or logged in clear. It returns invalid_request
// naming the field at fault, and forbidden for users or units outside the
// admin's unit and for changes that would take the admin's own rights away
// or leave the root unit without an administrator (details.reason).
func (a *App) UpsertUsers(ctx context.Context, p Principal, req *syncproto.UsersRequest) (*syncproto.UsersResponse, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if len(req.Users) == 0 || len(req.Users) > 10_000 {
		return nil, syncproto.InvalidField("users", "send between 1 and 10000 users")
	}
	updates := make([]store.UserUpdate, len(req.Users))
	for i, u := range req.Users {
		upd, err := userUpdate(fmt.Sprintf("users[%d]", i), u)
		if err != nil {
			return nil, err
		}
		updates[i] = upd
	}
	if err := hashPasswords(ctx, req.Users, updates); err != nil {
		return nil, err
	}
	users, err := a.store.UpsertUsers(ctx, p.Actor, updates)
	if err != nil {
		return nil, err
	}
	for _, u := range updates {
		if u.PasswordHash != "" {
			a.signins.clear(u.Username) // a new password ends a lockout
		}
	}
	resp := &syncproto.UsersResponse{Users: make([]syncproto.UserInfo, len(users))}
	for i := range users {
		resp.Users[i] = users[i].Info()
	}
	return resp, nil
}

// maxUserNameRunes bounds a person's name.
const maxUserNameRunes = 100

// userUpdate checks the fields u names and turns it into the store's
// update; an empty name, unit or password is one u does not name.
func userUpdate(field string, u syncproto.UserInput) (store.UserUpdate, error) {
	if !validUsername(u.Username) {
		return store.UserUpdate{}, syncproto.InvalidField(field+".username", "username must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	name := strings.TrimSpace(u.Name)
	switch {
	case u.Name != "" && name == "":
		return store.UserUpdate{}, syncproto.InvalidField(field+".name", "name is blank; leave it out to keep the user's name")
	case utf8.RuneCountInString(name) > maxUserNameRunes:
		return store.UserUpdate{}, syncproto.InvalidField(field+".name", "name is longer than %d characters", maxUserNameRunes)
	case u.Unit != "" && syncproto.UnitLevel(u.Unit) == "":
		return store.UserUpdate{}, syncproto.InvalidField(field+".unit", "unit must be a unit code of 4, 6, 9 or 12 digits")
	}
	if u.Password != "" {
		if err := auth.ValidatePassword(u.Password); err != nil {
			return store.UserUpdate{}, syncproto.InvalidField(field+".password", "%s", syncproto.AsError(err).Message)
		}
	}
	return store.UserUpdate{Username: u.Username, Name: name, Unit: u.Unit, Admin: u.Admin, Active: u.Active}, nil
}

// hashPasswords sets updates[i].PasswordHash for each user with a new
// password, on every core at once: a city's few hundred accounts take one
// hash time per core each (about 45 ms) instead of all of them in a row, so
// the request answers within seconds. A cancelled request stops hashing.
func hashPasswords(ctx context.Context, users []syncproto.UserInput, updates []store.UserUpdate) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range users {
		if users[i].Password == "" {
			continue
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := auth.HashPassword(users[i].Password)
			updates[i].PasswordHash = h
			return err
		})
	}
	return g.Wait()
}

func validUsername(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// RevokeDevice stops a device; admins only, within their unit.
func (a *App) RevokeDevice(ctx context.Context, p Principal, deviceID string, wipe bool) (*syncproto.RevokeResponse, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if !syncproto.ValidUUID(deviceID) {
		return nil, syncproto.InvalidField("device_id", "device_id must be a lowercase UUID")
	}
	if err := a.store.RevokeDevice(ctx, p.Actor, deviceID, wipe); err != nil {
		return nil, err
	}
	return &syncproto.RevokeResponse{DeviceID: deviceID, Revoked: true, Wipe: wipe}, nil
}

func requireAdmin(p Principal) error {
	if !p.Admin {
		return syncproto.Errorf(syncproto.CodeForbidden, "only administrators may do this")
	}
	return nil
}

// Feedback returns outcomes changed after cursor in the caller's unit, for
// reporting back to the national platform; township, county and center
// users may read it.
func (a *App) Feedback(p Principal, cursor string, limit int) (*syncproto.FeedbackResponse, error) {
	if !syncproto.IsManager(p.Actor.Role) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "feedback is for township, county and center users")
	}
	if limit == 0 {
		limit = syncproto.DefaultPullLimit
	}
	if limit < 0 || limit > syncproto.MaxPullLimit {
		return nil, syncproto.InvalidField("limit", "limit must be between 1 and %d", syncproto.MaxPullLimit)
	}
	return a.store.Feedback(p.Actor.Unit, cursor, limit)
}

// WarningDetail returns a warning with its history to a user whose scope
// holds it; the read is recorded in the audit log.
func (a *App) WarningDetail(ctx context.Context, p Principal, id string) (*store.WarningDetail, error) {
	if !syncproto.ValidUUID(id) {
		return nil, syncproto.InvalidField("id", "a warning id is a lowercase UUID")
	}
	return a.store.WarningDetail(ctx, p.Actor, id)
}

// AuditPage is a page of the audit log.
type AuditPage struct {
	Entries []store.AuditEntry `json:"entries"`
	// Next is the `after` of the next page.
	Next uint64 `json:"next"`
}

// Audit lists reads of personal data in the admin's unit; admins only.
func (a *App) Audit(p Principal, after uint64, limit int) (*AuditPage, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = syncproto.DefaultPullLimit
	}
	if limit < 0 || limit > syncproto.MaxPullLimit {
		return nil, syncproto.InvalidField("limit", "limit must be between 1 and %d", syncproto.MaxPullLimit)
	}
	entries, err := a.store.Audit(p.Actor.Unit, after, limit)
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Entries: entries, Next: after}
	if n := len(entries); n > 0 {
		page.Next = entries[n-1].Seq
	}
	return page, nil
}

// StatsQuery is a query of the loop's figures (GET /v1/stats), its values
// read by the HTTP layer.
type StatsQuery struct {
	// Unit is whose figures: the caller's unit when empty.
	Unit string
	// From and To are the first and last days, each its midnight in
	// Beijing time: To is today when zero, From six days before To.
	From, To time.Time
}

// Stats returns the loop's figures for a unit in the caller's scope over
// the days of q, at most a year of them; township, county and center users
// may read them.
func (a *App) Stats(p Principal, q StatsQuery) (*syncproto.StatsResponse, error) {
	unit, err := managedUnit(p, q.Unit, "statistics")
	if err != nil {
		return nil, err
	}
	now := a.store.Now()
	toDay, fromDay := q.To, q.From
	if toDay.IsZero() {
		toDay = syncproto.DayStart(now)
	}
	if fromDay.IsZero() {
		fromDay = syncproto.DayStart(toDay.AddDate(0, 0, -6))
	}
	switch {
	case fromDay.After(toDay):
		return nil, syncproto.InvalidField("from", "from (%s) is after to (%s)", fromDay.Format(time.DateOnly), toDay.Format(time.DateOnly))
	case toDay.Sub(fromDay) > 365*24*time.Hour:
		return nil, syncproto.InvalidField("from", "a range is at most a year")
	}
	return a.store.Stats(store.StatsQuery{Unit: unit, From: syncproto.DayOf(fromDay), To: syncproto.DayOf(toDay), Now: now})
}

// ListQuery is a query of the warning list (GET /v1/warnings, the
// console's list), its values read and checked for form by the HTTP
// layer.
type ListQuery struct {
	// Unit is whose warnings: the caller's unit when empty.
	Unit string
	// Status keeps the warnings in any of these states (syncproto's
	// Warning* constants); all when empty.
	Status []string
	// Risk (high, medium or low), FraudType and Assignee (a user id) keep
	// the warnings that have them; any when empty.
	Risk, FraudType, Assignee string
	// Overdue and Flagged (open flags) keep the warnings that are (true)
	// or are not (false); nil keeps both.
	Overdue, Flagged *bool
	// Escalated keeps the warnings with an open escalation (true: the
	// county's queue) or without (false); nil keeps both.
	Escalated *bool
	// From and To keep the warnings received on these days and between,
	// each its midnight in Beijing time; zero for no bound.
	From, To time.Time
	// Text is matched against the name, the address and the phone's end.
	Text string
	// Sort is store.SortReceived (the default), SortDeadline or
	// SortWarned; the store refuses any other.
	Sort string
	// Cursor is where the page before ended; empty for the first page.
	Cursor string
	// Limit is the page's size: 50 when 0, at most 500.
	Limit int
}

// List returns a page of warnings of a unit in the caller's scope; every
// item's personal data read is audited. Township, county and center users
// may list.
func (a *App) List(ctx context.Context, p Principal, lq ListQuery) (*syncproto.WarningList, error) {
	if !syncproto.IsManager(p.Actor.Role) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "lists are for township, county and center users")
	}
	q := store.ListQuery{Unit: lq.Unit, Status: lq.Status, Risk: lq.Risk, FraudType: lq.FraudType, Assignee: lq.Assignee,
		Overdue: lq.Overdue, Flagged: lq.Flagged, Escalated: lq.Escalated, From: lq.From,
		Text: strings.TrimSpace(lq.Text), Sort: lq.Sort, Cursor: lq.Cursor, Limit: lq.Limit, Now: a.store.Now()}
	if q.Unit == "" {
		q.Unit = p.Actor.Unit
	}
	if u, err := a.store.Unit(q.Unit); err != nil {
		return nil, err
	} else if u == nil {
		return nil, syncproto.InvalidField("unit", "unit %q does not exist", q.Unit)
	}
	if !syncproto.InScope(p.Actor.Unit, q.Unit) {
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "unit %s is outside your unit", q.Unit)
	}
	if q.Sort == "" {
		q.Sort = store.SortReceived
	}
	switch {
	case q.Limit == 0:
		q.Limit = 50
	case q.Limit < 0 || q.Limit > 500:
		return nil, syncproto.InvalidField("limit", "limit must be between 1 and 500")
	}
	if !lq.To.IsZero() {
		q.To = lq.To.AddDate(0, 0, 1) // the whole last day
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, syncproto.InvalidField("from", "from is after to")
	}
	list, err := a.store.List(q)
	if err != nil {
		return nil, err
	}
	if err := a.store.AuditList(ctx, p.Actor, list.Items); err != nil {
		return nil, err
	}
	return list, nil
}

// Sweep applies the retention policy once.
func (a *App) Sweep(ctx context.Context) (archived, redacted int, err error) {
	return a.store.Sweep(ctx, a.cfg.CadreRetention, a.cfg.RedactAfter)
}

// RunRetention sweeps at start and then every interval until ctx ends;
// on a cluster, on the leader only (Config.Leads).
func (a *App) RunRetention(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var archived, redacted int
		var err error
		if a.leads() {
			archived, redacted, err = a.Sweep(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("retention sweep failed", "err", err)
		case archived+redacted > 0:
			a.log.Info("retention sweep", "archived", archived, "redacted", redacted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Directory lists the units and active village users in the caller's
// unit, for dispatch and assignment.
func (a *App) Directory(p Principal) ([]syncproto.Unit, []syncproto.DirectoryUser, error) {
	if !syncproto.IsManager(p.Actor.Role) {
		return nil, nil, syncproto.Errorf(syncproto.CodeForbidden, "the directory is for township, county and center users")
	}
	return a.store.Directory(p.Actor.Unit)
}

// Accounts lists the users of an admin's unit and their devices; admins
// only.
func (a *App) Accounts(p Principal) ([]store.User, []store.Device, error) {
	if err := requireAdmin(p); err != nil {
		return nil, nil, err
	}
	users, err := a.store.UsersIn(p.Actor.Unit)
	if err != nil {
		return nil, nil, err
	}
	ids := make(map[string]bool, len(users))
	for _, u := range users {
		ids[u.ID] = true
	}
	devices, err := a.store.DevicesOf(ids)
	return users, phones(devices), err
}
