package mobile

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Time limits of the calls that use the network. Writes and reads never
// wait for it.
const (
	loginTimeout  = time.Minute
	logoutTimeout = 30 * time.Second
	// DefaultSyncTimeoutSeconds bounds one Sync call, its retries
	// included, when Config.SyncTimeoutSeconds is 0. A county lead's
	// first sync is a few hundred kilobytes: minutes at 50 kbit/s. A call
	// cut short loses nothing: every page applied stays, the next call
	// goes on from there.
	DefaultSyncTimeoutSeconds = 600
	// DefaultBackgroundSeconds is the background sync interval when
	// StartBackgroundSync is given 0 or less. On screen (SetForeground) a
	// phone hears of new work by long poll within seconds, and a local
	// write or NetworkAvailable syncs at once, so the interval only
	// catches what those miss: every 15 minutes, not every 5 (each wake
	// costs some 6 KB and 3 s of radio over HTTPS).
	DefaultBackgroundSeconds = 900
)

// Config configures a Client.
type Config struct {
	// ServerURL is the fieldsync server, e.g. "https://fieldsync.example";
	// it may carry a path, as a city behind a province's proxy does
	// ("https://province.example/4110"), which every request keeps.
	//
	// A city served by a cluster of three nodes is given as their three
	// addresses, separated by commas ("https://n1.example, https://n2.example,
	// https://n3.example"): a request that gets no answer at one (no
	// connection, a reset, a stall, 502, 503 or 504) goes at once to the
	// next, losing nothing and sending nothing twice, and the address that
	// answered last is where the app starts next time. One address behind
	// a load balancer is written as today.
	ServerURL string
	// DeviceName ("Redmi Note 12 of 刘村一") and Platform ("android 14",
	// "ios 17") describe the phone to the server's device list.
	DeviceName string
	Platform   string
	// Key seals the local data: 32 random bytes the app creates once and
	// keeps in the platform keystore (Android Keystore, iOS Keychain),
	// never in a file or in preferences. Losing it makes the local data
	// unreadable (CodeWrongKey); unsent work is then lost.
	Key []byte
	// SyncTimeoutSeconds bounds one Sync call, retries included;
	// DefaultSyncTimeoutSeconds when 0.
	SyncTimeoutSeconds int
	// The timeouts and intervals below default (when 0) to values chosen
	// for 2G links; see the SDK's Default* constants.
	//
	// StallTimeoutSeconds: a request that moves no byte for this long is
	// given up (30). A slow transfer that keeps moving is never cut.
	StallTimeoutSeconds int
	// ConnectTimeoutSeconds bounds making a connection, TLS included (20).
	ConnectTimeoutSeconds int
	// PageSeconds is about how long one page of changes should take on
	// the measured link (10).
	PageSeconds int
	// PollSeconds is how long a foreground long poll waits for new work
	// (40, at most 50).
	PollSeconds int
	// RetryFirstSeconds and RetryMaxSeconds shape the backoff after a
	// failure: the first wait (1) doubles up to the cap (60), with jitter.
	RetryFirstSeconds int
	RetryMaxSeconds   int
	// PullDetail is how much of each warning syncs bring: "full" or
	// "summary" (attempts without notes, places and photos; about half
	// the bytes). Empty: summaries on a county or city lead's phone,
	// whole warnings on the others. FetchWarning brings one whole.
	PullDetail string
}

// Client is one installation's fieldsync: create one with NewClient when the
// app starts, keep it for the app's life, Close it when the app ends. All
// methods are safe to call from any thread; Login, Logout and Sync block
// on the network, so call them off the UI thread. Reads (Warnings,
// Warning, Status, ...) and writes (RecordAttempt, Review, ...) return at
// once and never touch the network.
type Client struct {
	sdk         *clientsdk.Client
	ctx         context.Context
	cancel      context.CancelFunc
	syncTimeout time.Duration
	closed      atomic.Bool
	events      *dispatcher
	stopEvents  []func()

	mu         sync.Mutex
	background bool
}

// NewClient opens (or creates) the local data in dir, a folder private to
// the app (Android: context.getFilesDir(); iOS: Application Support).
// Errors: invalid_request (bad config), wrong_key (dir was sealed with
// another key), internal (the folder cannot be used).
func NewClient(dir string, cfg *Config) (*Client, error) {
	if cfg == nil {
		return nil, newError(CodeInvalidRequest, "a Config is required")
	}
	if dir == "" {
		return nil, newError(CodeInvalidRequest, "a folder for the local data is required")
	}
	if cfg.ServerURL == "" {
		return nil, newError(CodeInvalidRequest, "Config.ServerURL is required")
	}
	if len(cfg.Key) != 32 {
		return nil, newError(CodeInvalidRequest, "Config.Key must be 32 bytes from the platform keystore")
	}
	for _, v := range []int{cfg.SyncTimeoutSeconds, cfg.StallTimeoutSeconds, cfg.ConnectTimeoutSeconds,
		cfg.PageSeconds, cfg.PollSeconds, cfg.RetryFirstSeconds, cfg.RetryMaxSeconds} {
		if v < 0 {
			return nil, newError(CodeInvalidRequest, "Config timeouts and intervals are seconds, 0 or more")
		}
	}
	if d := cfg.PullDetail; d != "" && d != syncproto.DetailFull && d != syncproto.DetailSummary {
		return nil, newError(CodeInvalidRequest, "Config.PullDetail must be \"full\", \"summary\" or empty")
	}
	servers, err := remote.SplitAddresses(cfg.ServerURL)
	if err != nil {
		return nil, newError(CodeInvalidRequest, "Config.ServerURL: "+err.Error())
	}
	sdk, err := clientsdk.Open(dir, clientsdk.Options{
		ServerURLs: servers, DeviceName: cfg.DeviceName, Platform: cfg.Platform,
		Key:          append([]byte(nil), cfg.Key...),
		StallTimeout: seconds(cfg.StallTimeoutSeconds), ConnectTimeout: seconds(cfg.ConnectTimeoutSeconds),
		PageTime: seconds(cfg.PageSeconds), PollWait: seconds(cfg.PollSeconds), PullDetail: cfg.PullDetail,
		Retry: clientsdk.RetryPolicy{Initial: seconds(cfg.RetryFirstSeconds), Max: seconds(cfg.RetryMaxSeconds)},
	})
	if err != nil {
		return nil, wrap(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{sdk: sdk, ctx: ctx, cancel: cancel, events: newDispatcher()}
	c.syncTimeout = time.Duration(cfg.SyncTimeoutSeconds) * time.Second
	if c.syncTimeout <= 0 {
		c.syncTimeout = DefaultSyncTimeoutSeconds * time.Second
	}
	c.stopEvents = append(c.stopEvents,
		sdk.OnChange(func(e clientsdk.Event) { c.events.change(e.Kind, strings.Join(e.IDs, ",")) }),
		sdk.OnProgress(func(p clientsdk.Progress) {
			c.events.progress(p.Phase, p.Pushed, p.ToPush, p.Pulled, p.Remaining)
		}),
	)
	return c, nil
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// Close cancels any call in progress (it returns CodeClosed), stops
// background sync and the listener, and closes the local data. Nothing is
// lost: unsent work stays for the next NewClient. Calling it again does
// nothing.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel()
	for _, stop := range c.stopEvents {
		stop()
	}
	c.events.close()
	return wrap(c.sdk.Close())
}

// call runs fn with the client's context limited to d.
func (c *Client) call(d time.Duration, fn func(ctx context.Context) error) error {
	if c.closed.Load() {
		return newError(CodeClosed, "the client is closed")
	}
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	return wrap(fn(ctx))
}

// write checks the client is open before a local write.
func (c *Client) write(fn func() (clientsdk.OpStatus, error)) (*OpStatus, error) {
	if c.closed.Load() {
		return nil, newError(CodeClosed, "the client is closed")
	}
	op, err := fn()
	if err != nil {
		return nil, wrap(err)
	}
	return newOpStatus(&op), nil
}

// Login signs username in from this device and keeps the session; it
// blocks on the network (up to a minute). The same user's later app
// starts need no Login: the session is kept and refreshed by Sync.
// A different user may log in only when the last one left no unsent work.
// Errors: unauthorized (wrong username or password), forbidden,
// hand_over_first, network, timeout, closed.
func (c *Client) Login(username, password string) (*User, error) {
	var u *User
	err := c.call(loginTimeout, func(ctx context.Context) error {
		info, err := c.sdk.Login(ctx, username, password)
		if err == nil {
			u = newUser(info)
		}
		return err
	})
	return u, err
}

// Logout ends the session here and, when it can reach it, on the server.
// Local data and unsent work stay for the same user's next Login. An error
// with the session ended locally but not on the server has code network
// or unavailable.
func (c *Client) Logout() error {
	return c.call(logoutTimeout, func(ctx context.Context) error { return c.sdk.Logout(ctx) })
}

// CurrentUser is the signed-in user, or nil when nobody is.
func (c *Client) CurrentUser() *User {
	u, ok := c.sdk.User()
	if !ok {
		return nil
	}
	return newUser(u)
}

// DeviceID is this installation's id on the server ("" before the first
// Login).
func (c *Client) DeviceID() string { return c.sdk.DeviceID() }

// Server is the address of Config.ServerURL that requests go to first now:
// of a cluster's several, the one that answered last.
func (c *Client) Server() string { return c.sdk.Server() }

// Sync sends this device's work in order, pulls the changes in the user's
// scope, then uploads photos; it blocks on the network. Transient failures
// are retried with backoff inside the call, within
// Config.SyncTimeoutSeconds. Progress goes to Listener.OnProgress.
// Errors: not_logged_in, device_revoked, network, timeout, unavailable,
// closed. An op the server refuses is no error: it shows in Rejected.
func (c *Client) Sync() (*SyncReport, error) {
	var rep clientsdk.Report
	err := c.call(c.syncTimeout, func(ctx context.Context) error {
		var err error
		rep, err = c.sdk.Sync(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SyncReport{
		Pushed: rep.Pushed, Applied: rep.Applied, Rejected: rep.Rejected, Pulled: rep.Pulled,
		Removed: rep.Removed, Kept: rep.Kept, Reset: rep.Reset, Photos: rep.Photos, PhotosFailed: rep.PhotosFailed, Attempts: rep.Attempts,
	}, nil
}

// NetworkAvailable tells the SDK the platform reports the network back:
// call it from Android's ConnectivityManager.NetworkCallback.onAvailable
// or iOS's NWPathMonitor when the path becomes satisfied. Background sync
// then runs at once instead of waiting out its backoff, so work made
// offline leaves within seconds of the link returning. A request under
// way on the old network's connection is ended and sent again on a new
// one, so call it when the network is really back or has changed, not on
// every callback. Cheap; returns at once.
func (c *Client) NetworkAvailable() {
	if !c.closed.Load() {
		c.sdk.NetworkAvailable()
	}
}

// SetForeground tells the SDK whether the app is on screen (call it from
// onResume/onPause, or sceneDidBecomeActive/sceneWillResignActive). In the
// foreground, background sync waits for new work by long poll, so a new
// warning shows within seconds; in the background it syncs only every
// interval. Returns at once.
func (c *Client) SetForeground(on bool) {
	if !c.closed.Load() {
		c.sdk.SetForeground(on)
	}
}

// StartBackgroundSync syncs every `seconds` (DefaultBackgroundSeconds when
// 0 or less), soon after each local write, and after a failure with
// backoff, until StopBackgroundSync or Close. It runs only while the
// process does: call it when the app comes to the foreground, stop it when
// it leaves, and schedule Sync with WorkManager (Android) or
// BGTaskScheduler (iOS) for the rest.
func (c *Client) StartBackgroundSync(seconds int) {
	if c.closed.Load() {
		return
	}
	if seconds <= 0 {
		seconds = DefaultBackgroundSeconds
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sdk.StartBackgroundSync(time.Duration(seconds) * time.Second)
	c.background = true
}

// StopBackgroundSync stops background sync and waits for a sync in
// progress to end.
func (c *Client) StopBackgroundSync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sdk.StopBackgroundSync()
	c.background = false
}

// Status is the device's sync state.
func (c *Client) Status() *SyncStatus {
	st := c.sdk.Status()
	u, _ := c.sdk.User()
	c.mu.Lock()
	bg := c.background
	c.mu.Unlock()
	out := &SyncStatus{
		LoggedIn: st.LoggedIn, Username: u.Username, DeviceID: c.sdk.DeviceID(),
		Revoked: st.Revoked, Wiped: st.Wiped, HandOver: len(c.sdk.HandOver()),
		Pending: st.Pending, Rejected: st.Rejected, LastSync: millis(st.LastSync),
		PhotosPending: st.PhotosPending, PhotosFailed: st.PhotosFailed, PhotoError: st.PhotoError,
		BackgroundSync: bg,
	}
	if st.LastError != nil {
		err := wrap(st.LastError)
		out.LastError, out.LastErrorCode = err.Error(), ErrorCode(err)
	}
	return out
}

// HandOverJSON is the work a revoked and wiped device still holds unsent,
// as a JSON array of protocol ops (PROTOCOL.md section 4), for the app to
// give to someone who can send it (a lead's device, the center). "[]" when
// there is none.
func (c *Client) HandOverJSON() (string, error) {
	ops := c.sdk.HandOver()
	b, err := json.Marshal(ops)
	if err != nil {
		return "", wrap(err)
	}
	return string(b), nil
}
