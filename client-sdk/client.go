package clientsdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/client-sdk/internal/stall"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Options configure a client.
type Options struct {
	// ServerURL is the fieldsync server, e.g. "https://fieldsync.example";
	// it may carry a path, as a city behind a province's proxy does
	// ("https://province.example/4110"), which every request keeps.
	ServerURL string
	// ServerURLs are the server's other addresses: the nodes of a city's
	// cluster (docs/CLUSTER.md), each with its path if it has one. A
	// request that gets no answer at one address (it cannot connect, the
	// connection is reset or stalls, or a proxy or node answers 502, 503
	// or 504) goes at once to the next, with the same token, cursor and
	// ops; the address that answered is where later requests start, and
	// the next Open starts there too (it is kept in the local store).
	// A city behind one load balancer needs none. When ServerURL is
	// empty the first of these takes its place.
	ServerURLs []string
	// DeviceName and Platform describe the phone to the server.
	DeviceName string
	Platform   string
	// Key seals the local data: 32 bytes from the platform keystore.
	Key []byte
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// HTTPClient carries requests; by default one made for 2G links (see
	// NewHTTPClient). Whatever its transport, requests also fail when no
	// byte moves for StallTimeout.
	HTTPClient *http.Client
	// StallTimeout is how long a request may go without a byte moving
	// before it is given up: a slow transfer that keeps moving is never
	// cut. DefaultStallTimeout when zero.
	StallTimeout time.Duration
	// ConnectTimeout bounds making a connection, TLS included;
	// DefaultConnectTimeout when zero. Used by the default HTTPClient.
	ConnectTimeout time.Duration
	// PageTime is about how long one pull page should take on the link
	// the SDK measures: pages are sized in bytes to it. DefaultPageTime
	// when zero.
	PageTime time.Duration
	// PollWait is how long a foreground long poll asks the server to hold
	// it (at most syncproto.MaxPullWait seconds); DefaultPollWait when
	// zero.
	PollWait time.Duration
	// PullDetail is how much of each warning pulls bring:
	// syncproto.DetailFull or syncproto.DetailSummary. When empty, a
	// county or city lead's phone pulls summaries (they watch the loop
	// and do not review each attempt; a county's first sync takes half
	// the bytes) and everyone else's pulls whole warnings. A summary
	// warning's whole state comes from FetchWarning.
	PullDetail string
	// Logger receives the SDK's own log lines, never personal data.
	Logger *slog.Logger
	// Codec is the wire encoding; MessagePack by default.
	Codec syncproto.Codec
	// Retry shapes the backoff between attempts of a sync.
	Retry RetryPolicy
	// PushBatch is the most ops per push (at most 500).
	PushBatch int
	// PullLimit is the page size asked of the server.
	PullLimit int
	// JournalRetention is how long an op stays on the phone, sealed like
	// the outbox, after a pull confirmed it; DefaultJournalRetention when
	// zero, none when negative. The server is backed up, typically each
	// night; restored from a backup, it lacks every op it applied after
	// that backup was taken, and the device sends again the ones it still
	// holds. Keep it longer than the age of the oldest backup an operator
	// would restore, plus the days a phone may stay offline.
	JournalRetention time.Duration
	// JournalMax caps how many confirmed ops are kept, the oldest dropped
	// first; DefaultJournalMax when zero, none when negative.
	JournalMax int
}

// The journal's defaults: two weeks of work, and a bound on the file for
// the busiest devices (a lead's phone reviewing and assigning all day).
const (
	DefaultJournalRetention = 14 * 24 * time.Hour
	DefaultJournalMax       = 5000
)

// Defaults chosen for 2G links (50-64 kbit/s, 800-1500 ms round trips,
// drops every few seconds).
const (
	// DefaultStallTimeout: thirty seconds without a byte is a link that
	// is gone; a slow one moves a few kilobytes a second.
	DefaultStallTimeout = 30 * time.Second
	// DefaultConnectTimeout covers a radio waking up (2-3 s), TCP and a
	// TLS handshake at 1.5 s round trips.
	DefaultConnectTimeout = 20 * time.Second
	// DefaultPageTime: round trips cost a page under 15% at 1.5 s, and a
	// page lost to a drop costs little.
	DefaultPageTime = 10 * time.Second
	// DefaultPollWait stays under the 60 s idle limit of common proxies
	// and of mobile carriers' NATs.
	DefaultPollWait = 40 * time.Second
	// DefaultIdleConnTimeout keeps a connection for the next sync or poll
	// so it skips a handshake (three round trips over TLS), but closes it
	// before the server (120 s), nginx (75 s) or a carrier's NAT does: a
	// request on a connection the other side just closed fails
	// (OPERATIONS.md, "Keep-alive for phones").
	DefaultIdleConnTimeout = 55 * time.Second
	// DefaultRetryMax caps the wait between tries: after an outage the
	// phone is back within about a minute.
	DefaultRetryMax = time.Minute
)

// NewHTTPClient is the SDK's default HTTP client: connections kept between
// syncs, TLS sessions resumed on reconnect (a full handshake costs two
// more round trips: 3.0 s against 0.9 s at 800 ms), no total timeout (the
// SDK cuts stalls instead, so a slow page that moves is never cut).
func NewHTTPClient(connectTimeout time.Duration) *http.Client {
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         stall.Dial(dialer.DialContext),
		TLSClientConfig:     &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(8), MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: connectTimeout,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     DefaultIdleConnTimeout,
		ForceAttemptHTTP2:   false,
	}}
}

// RetryPolicy is exponential backoff with full jitter.
type RetryPolicy struct {
	// Initial is the first wait; 1 s by default.
	Initial time.Duration
	// Max caps a wait; DefaultRetryMax by default.
	Max time.Duration
	// Attempts is how many times one Sync call tries before it returns
	// the error; 5 by default. Background sync keeps trying.
	Attempts int
	// Sleep waits; tests replace it. It returns early when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Errors a caller can act on.
var (
	// ErrNotLoggedIn: no account on this device; call Login.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrRevoked: the server revoked this device; it may not sync again.
	ErrRevoked = errors.New("this device was revoked")
	// ErrStalled: the link moved no byte for Options.StallTimeout and the
	// request was given up; nothing is lost, the next sync goes on.
	ErrStalled = stall.ErrStalled
	// ErrHandOverFirst: another user's unsent ops are still on the device.
	ErrHandOverFirst = errors.New("this device holds another user's unsent work; hand it over before switching user")
)

// Client is one device's SDK. Create it with Open; it is safe for
// concurrent use.
type Client struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	local  *localstore.Store
	remote *remote.Client

	// syncMu makes syncs one at a time.
	syncMu sync.Mutex
	// tokenMu makes refreshes one at a time: a long poll runs beside a
	// sync, and two refreshes of one token would spend it twice.
	tokenMu sync.Mutex

	// mu guards the replica of the local store (reads never decrypt and
	// decode the whole file), lastError, and background, foreground and
	// netBack below.
	mu        sync.RWMutex
	replica   replica
	lastError error
	// candidates are the states the device computed of warnings its
	// pushes changed, by warning id, offered in the next pull's have
	// (expect.go); receivedAt is when the server applied each op of the
	// outbox it answered in this session, by op id. Memory only: losing
	// them costs the states' bytes, never a state.
	candidates map[string]candidate
	receivedAt map[string]time.Time

	// pager sizes pull pages to the link, chunker photo pieces.
	pager   *pager
	chunker *chunker

	listeners  listeners
	background *background
	foreground bool
	// netBack is closed when the platform says the network is back.
	netBack chan struct{}
	// requests are the cancels of the requests under way (inFlight).
	reqMu    sync.Mutex
	requests map[*context.CancelCauseFunc]struct{}
}

// Open opens the SDK's folder, creating it on first use.
func Open(dir string, opts Options) (*Client, error) {
	if opts.ServerURL == "" && len(opts.ServerURLs) > 0 {
		opts.ServerURL, opts.ServerURLs = opts.ServerURLs[0], opts.ServerURLs[1:]
	}
	if opts.ServerURL == "" {
		return nil, errors.New("ServerURL is required")
	}
	local, err := localstore.Open(dir, opts.Key)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, now: opts.Now, log: opts.Logger, local: local}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.opts.PushBatch <= 0 || c.opts.PushBatch > syncproto.MaxPushOps {
		c.opts.PushBatch = syncproto.MaxPushOps
	}
	if c.opts.PullLimit <= 0 || c.opts.PullLimit > syncproto.MaxPullLimit {
		c.opts.PullLimit = syncproto.MaxPullLimit
	}
	if c.opts.JournalRetention == 0 {
		c.opts.JournalRetention = DefaultJournalRetention
	}
	if c.opts.JournalMax == 0 {
		c.opts.JournalMax = DefaultJournalMax
	}
	if c.opts.JournalRetention < 0 || c.opts.JournalMax < 0 {
		c.opts.JournalRetention, c.opts.JournalMax = -1, 0
	}
	c.remote = remote.New(opts.ServerURL, opts.ServerURLs...)
	if opts.Codec != nil {
		c.remote.Codec = opts.Codec
	}
	c.remote.HTTP = withStallTimeout(opts.HTTPClient, opts)
	if c.opts.PageTime <= 0 {
		c.opts.PageTime = DefaultPageTime
	}
	if c.opts.PollWait <= 0 {
		c.opts.PollWait = DefaultPollWait
	}
	c.opts.PollWait = min(c.opts.PollWait, syncproto.MaxPullWait*time.Second)
	c.pager = newPager(c.opts.PageTime)
	c.chunker = newChunker(c.opts.PageTime)
	c.remote.Gzip = true
	if err := c.load(); err != nil {
		local.Close()
		return nil, err
	}
	// Start where the last session's requests were answered: a node that
	// was down then costs no failed connection (a connect timeout, on 2G)
	// at every start of the app. An address no longer listed is ignored.
	c.remote.UseAddress(c.replica.state.Server)
	return c, nil
}

// withStallTimeout is hc (NewHTTPClient when nil) with the stall watchdog
// around its transport.
func withStallTimeout(hc *http.Client, opts Options) *http.Client {
	if hc == nil {
		hc = NewHTTPClient(opts.ConnectTimeout)
	}
	limit := opts.StallTimeout
	if limit <= 0 {
		limit = DefaultStallTimeout
	}
	out := *hc
	// The link is timed by the real clock, whatever clock the SDK was given.
	out.Transport = &stall.Transport{Base: hc.Transport, Limit: limit}
	return &out
}

// load reads the local store into memory.
func (c *Client) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local.View(func(tx *localstore.Tx) error {
		var err error
		c.replica, err = loadReplica(tx)
		return err
	})
}

// Close stops background sync and closes the local store.
func (c *Client) Close() error {
	c.StopBackgroundSync()
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.local.Close()
}

// Server is the server address requests go to first now: the one that
// answered last (Options.ServerURLs).
func (c *Client) Server() string {
	return c.remote.Address()
}

// DeviceID is this installation's device id, made at the first login.
func (c *Client) DeviceID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.state.DeviceID
}

// User is the signed-in user, and false when nobody is.
func (c *Client) User() (syncproto.UserInfo, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.state.User, c.replica.state.RefreshToken != ""
}

// Login signs username in from this device. A different user than the last
// one may sign in only when the last one left no unsent ops; the device then
// starts afresh under a new device id. A server that allows the account no
// more devices answers too_many_devices, whose message tells the person
// what to do (sign out elsewhere, or have an administrator revoke a
// device); nothing changes here and the same call works once they have.
func (c *Client) Login(ctx context.Context, username, password string) (syncproto.UserInfo, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.RLock()
	st := c.replica.state
	switchUser := st.User.Username != "" && st.User.Username != username
	unsent := len(c.replica.outbox)
	for _, p := range c.replica.photos {
		if !p.Uploaded {
			// A photo not yet uploaded is unsent work too: another user
			// would upload it under their own name.
			unsent++
		}
	}
	handOver := len(c.replica.handOver)
	c.mu.RUnlock()
	// A revoked device's unsent ops can only leave by hand-over; starting
	// afresh would delete them.
	if (switchUser || st.Revoked) && unsent > 0 || handOver > 0 {
		return syncproto.UserInfo{}, ErrHandOverFirst
	}
	if switchUser || st.DeviceID == "" || st.Revoked {
		if err := c.resetDevice(); err != nil {
			return syncproto.UserInfo{}, err
		}
		c.mu.RLock()
		st = c.replica.state
		c.mu.RUnlock()
	}
	resp, err := c.remote.Login(ctx, syncproto.LoginRequest{
		Username: username, Password: password, DeviceID: st.DeviceID,
		DeviceName: c.opts.DeviceName, Platform: c.opts.Platform,
	})
	if err != nil {
		return syncproto.UserInfo{}, err
	}
	err = c.updateState(func(s *localstore.State) {
		s.User = resp.User
		s.AccessToken, s.RefreshToken = resp.AccessToken, resp.RefreshToken
		s.AccessExpires = c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)
	})
	if err != nil {
		return syncproto.UserInfo{}, err
	}
	c.emit(Event{Kind: EventAuth})
	return resp.User, nil
}

// resetDevice forgets everything of a previous user and takes a new device
// id. Called only with an empty outbox (or a revoked device).
func (c *Client) resetDevice() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := localstore.State{DeviceID: uuid.Must(uuid.NewV7()).String(), NextSeq: 1}
	err := c.local.Update(func(tx *localstore.Tx) error {
		if err := tx.ClearServerState(); err != nil {
			return err
		}
		// The previous user's confirmed ops are theirs: the new device id
		// has none on the server to lose.
		if err := tx.ClearJournal(); err != nil {
			return err
		}
		for _, p := range c.replica.outbox {
			if err := tx.DeleteOp(p.Op.ClientSeq); err != nil {
				return err
			}
		}
		for _, p := range c.replica.rejected {
			if _, err := tx.DeleteRejected(p.Op.ID); err != nil {
				return err
			}
		}
		if err := c.deletePhotos(tx); err != nil {
			return err
		}
		return tx.SetState(st)
	})
	if err != nil {
		return err
	}
	c.removePhotoFiles()
	// Nothing of the previous user may linger in the file's free pages.
	if err := c.local.Scrub(); err != nil {
		return err
	}
	c.replica = newReplica(st)
	return nil
}

// deletePhotos deletes every photo's record in tx: the device forgets its
// user, or is wiped. Callers hold c.mu, and call removePhotoFiles once tx
// has committed.
func (c *Client) deletePhotos(tx *localstore.Tx) error {
	for sum := range c.replica.photos {
		if err := tx.DeletePhoto(sum); err != nil {
			return err
		}
	}
	return nil
}

// removePhotoFiles removes every photo's sealed file and forgets the
// photos. Callers hold c.mu.
func (c *Client) removePhotoFiles() {
	for sum := range c.replica.photos {
		_ = c.local.RemovePhotoFile(sum)
	}
	c.replica.photos = map[string]localstore.Photo{}
}

// Logout ends this device's session on the server (when it can reach it)
// and forgets the tokens. Local data and unsent ops stay for the next login
// of the same user.
func (c *Client) Logout(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.remote.SetToken(c.accessToken())
	err := c.remote.Logout(ctx)
	if uerr := c.updateState(func(s *localstore.State) {
		s.AccessToken, s.RefreshToken, s.AccessExpires = "", "", time.Time{}
	}); uerr != nil {
		return uerr
	}
	c.emit(Event{Kind: EventAuth})
	if err != nil && syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		return fmt.Errorf("logged out on this device; the server was not told: %w", err)
	}
	return nil
}

func (c *Client) accessToken() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.state.AccessToken
}

// updateState changes the sync metadata on disk, then in memory. It also
// keeps the server address in use, so the next Open starts there: at no
// cost, since every sync and sign-in writes the state anyway.
func (c *Client) updateState(fn func(s *localstore.State)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.replica.state
	fn(&st)
	st.Server = c.remote.Address()
	if err := c.local.Update(func(tx *localstore.Tx) error { return tx.SetState(st) }); err != nil {
		return err
	}
	c.replica.state = st
	return nil
}
