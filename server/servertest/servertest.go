// Package servertest starts a real fieldsync server on 127.0.0.1:0 for
// tests, examples and benchmarks: a fresh store in a temporary directory, an
// admin account, and clients logged in over real HTTP.
//
// It is also the one test world of the server's tests. Every city a test
// needs comes from here, and is a piece of the demo city (server/demo): the
// small city (City, with the personas center1 ... b1 the assertions name)
// or a township of n single-cadre villages (Township), loaded through the
// admin API of any server (Load, Server.LoadCity) or straight into a store
// for tests without HTTP (LoadStore). Helpers that more than one test
// package needs live here too: feed rows, photos, log capture, checks of
// exported files.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// AdminPassword is the test admin's password.
const AdminPassword = "admin-password-1"

// Options tune a test server.
type Options struct {
	// Dir is the store directory; a new temporary one when empty.
	Dir string
	// Now is the server's clock.
	Now func() time.Time
	// Logger receives request logs; discarded when nil.
	Logger *slog.Logger
	// Codec is what the clients speak; MessagePack when nil.
	Codec syncproto.Codec
	// AccessTTL is the access token lifetime.
	AccessTTL time.Duration
	// RefreshGrace is the refresh grace window: app.DefaultRefreshGrace
	// when 0, none when app.NoRefreshGrace.
	RefreshGrace time.Duration
	// NoSync skips fsync, for benchmarks of everything else.
	NoSync bool
	// WarningLimits, PhotoQuota and OrphanPhotoGrace bound what a device
	// can make the server keep; the production defaults when zero.
	WarningLimits    syncproto.WarningLimits
	PhotoQuota       int64
	OrphanPhotoGrace time.Duration
	// ConsoleIdle and ConsoleLifetime end the web console's sessions
	// (app.Config's; its defaults when 0).
	ConsoleIdle     time.Duration
	ConsoleLifetime time.Duration
	// Metrics, when set, counts the server's work and serves it at
	// /metrics, behind MetricsToken when that is set.
	Metrics      *metrics.Metrics
	MetricsToken string
	// RateLimit is the request limits: the production defaults, except
	// that the limit per device is off unless DeviceRate is set, since
	// tests and examples drive one device thousands of times faster than
	// a phone. Their sign-ins from 127.0.0.1 stay under the per-address
	// defaults.
	RateLimit httpapi.RateLimit
	// Lockout is the sign-in throttling; the production defaults when zero.
	Lockout app.Lockout
	// FeedLimit is the largest feed file, by the API or the console
	// (feed.DefaultLimit when 0).
	FeedLimit int64
	// PullTimer and MaxPullWaiters tune held pulls (store.Options).
	PullTimer      func(d time.Duration) (<-chan time.Time, func() bool)
	MaxPullWaiters int
	// MaxDevicesPerUser caps the devices a user may have signed in at
	// once; unlike in production there is no cap unless it is set, since
	// tests sign the admin in from a new device at every step.
	// DeviceExpiry is store.Options'.
	MaxDevicesPerUser int
	DeviceExpiry      time.Duration
	// Listen tunes the listener, for tests of its timeouts.
	Listen httpapi.ListenConfig
	// BasePath serves everything under it, as behind a province's proxy
	// ("/4110"); the server's URL then ends in it.
	BasePath string
	// Replicate is store.Options': it receives every group of writes as
	// an entry, for tests of the replicated store.
	Replicate func(ctx context.Context, st *store.Store, entry []byte) (*store.Applied, error)
	// Store, when set, is served instead of a store opened in Dir (a node
	// of a cluster, whose store the test opened with its Replicate); the
	// server closes it. The store options above are then the test's.
	Store *store.Store
	// CatchUp is app.Config's: on a node of a cluster, its node's
	// CatchUp, which a failed sign-in waits for before it checks again.
	CatchUp func(ctx context.Context) error
}

// Server is a running test server.
type Server struct {
	Store *store.Store
	App   *app.App
	// Console is the web console the server serves under /console.
	Console *console.Console
	HTTP    *httpapi.Server
	// URL is the server's address, its base path included.
	URL   string
	Dir   string
	codec syncproto.Codec
	owned bool

	closeOnce sync.Once
	closeErr  error
}

// Start opens a store, creates the demo city's root unit (4110 许昌市) and
// the admin, and serves on 127.0.0.1:0 until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("start server: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	return s
}

// Open is Start without testing: for example programs and load tools.
func Open(opts Options) (*Server, error) {
	dir, owned := opts.Dir, false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "fieldsync-*"); err != nil {
			return nil, err
		}
		owned = true
	}
	maxDevices := opts.MaxDevicesPerUser
	if maxDevices == 0 {
		maxDevices = -1
	}
	sopts := store.Options{Create: true, Now: opts.Now, NoSync: opts.NoSync, PullTimer: opts.PullTimer, MaxPullWaiters: opts.MaxPullWaiters,
		MaxDevicesPerUser: maxDevices, DeviceExpiry: opts.DeviceExpiry, WarningLimits: opts.WarningLimits, PhotoQuota: opts.PhotoQuota,
		Replicate: opts.Replicate}
	if opts.Metrics != nil {
		sopts.OnCommit = opts.Metrics.ObserveCommit
	}
	st := opts.Store
	if st == nil {
		var err error
		if st, err = store.Open(dir, sopts); err != nil {
			return nil, err
		}
	} else {
		dir = st.Dir()
	}
	opts.Metrics.WatchStore(st)
	ctx := context.Background()
	admin, err := st.UserByUsername(app.AdminUsername)
	if err != nil {
		st.Close()
		return nil, err
	}
	if admin == nil {
		if err := app.Bootstrap(ctx, st, root().Code, root().Name, AdminPassword); err != nil {
			st.Close()
			return nil, err
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := app.New(ctx, st, app.Config{AccessTTL: opts.AccessTTL, RefreshGrace: opts.RefreshGrace, Metrics: opts.Metrics, Lockout: opts.Lockout,
		OrphanPhotoGrace: opts.OrphanPhotoGrace, ConsoleIdle: opts.ConsoleIdle, ConsoleLifetime: opts.ConsoleLifetime,
		CatchUp: opts.CatchUp}, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	con, err := console.New(a, console.Config{FeedLimit: opts.FeedLimit, BasePath: opts.BasePath})
	if err != nil {
		st.Close()
		return nil, err
	}
	limits := opts.RateLimit
	if limits.DeviceRate == 0 {
		limits.DeviceRate = -1
	}
	srv := httpapi.New(a, httpapi.Config{Logger: logger, Mount: []func(*echo.Echo){con.Register},
		Metrics: opts.Metrics, MetricsToken: opts.MetricsToken, RateLimit: limits, CSVLimit: opts.FeedLimit, Listen: opts.Listen, BasePath: opts.BasePath})
	if err := srv.Open("127.0.0.1:0"); err != nil {
		st.Close()
		return nil, err
	}
	codec := opts.Codec
	if codec == nil {
		codec = syncproto.Msgpack
	}
	return &Server{Store: st, App: a, Console: con, HTTP: srv, URL: srv.URL() + opts.BasePath, Dir: dir, codec: codec, owned: owned}, nil
}

// Close stops the server and closes the store. A test may close a server
// itself (to restart on its directory) before Start's cleanup closes it
// again: only the first call does anything.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.HTTP.Close(ctx)
		if cerr := s.Store.Close(); s.closeErr == nil {
			s.closeErr = cerr
		}
		if s.owned {
			os.RemoveAll(s.Dir)
		}
	})
	return s.closeErr
}

// Client returns a client that is not logged in.
func (s *Server) Client() *remote.Client {
	c := remote.New(s.URL)
	c.Codec = s.codec
	return c
}

// Device is a logged-in client and its device id.
type Device struct {
	*remote.Client
	ID    string
	Login *syncproto.TokenResponse
	seq   uint64
}

// NextSeq returns the next client_seq of this device.
func (d *Device) NextSeq() uint64 {
	d.seq++
	return d.seq
}

// Login signs username in from a new device.
func (s *Server) Login(tb testing.TB, username, password string) *Device {
	tb.Helper()
	d, err := s.LoginDevice(username, password, uuid.NewString())
	if err != nil {
		tb.Fatalf("login %s: %v", username, err)
	}
	return d
}

// LoginDevice signs username in from deviceID.
func (s *Server) LoginDevice(username, password, deviceID string) (*Device, error) {
	c := s.Client()
	resp, err := c.Login(context.Background(), syncproto.LoginRequest{
		Username: username, Password: password, DeviceID: deviceID, DeviceName: "test " + username, Platform: "test",
	})
	if err != nil {
		return nil, err
	}
	return &Device{Client: c, ID: deviceID, Login: resp}, nil
}

// Admin signs the admin in from a new device.
func (s *Server) Admin(tb testing.TB) *Device {
	tb.Helper()
	return s.Login(tb, app.AdminUsername, AdminPassword)
}

// LastSeq is the newest log sequence of the server's store.
func (s *Server) LastSeq(tb testing.TB) uint64 {
	tb.Helper()
	seq, err := s.Store.LastSeq()
	if err != nil {
		tb.Fatalf("read the log's sequence: %v", err)
	}
	return seq
}

// User is the stored user named username, nil when there is none.
func (s *Server) User(tb testing.TB, username string) *store.User {
	tb.Helper()
	u, err := s.Store.UserByUsername(username)
	if err != nil {
		tb.Fatalf("read user %s: %v", username, err)
	}
	return u
}

// Unit is the stored unit with code, nil when there is none.
func (s *Server) Unit(tb testing.TB, code string) *syncproto.Unit {
	tb.Helper()
	u, err := s.Store.Unit(code)
	if err != nil {
		tb.Fatalf("read unit %s: %v", code, err)
	}
	return u
}

// Photo is the metadata of the stored photo sum, nil when there is none.
func (s *Server) Photo(tb testing.TB, sum string) *store.BlobMeta {
	tb.Helper()
	m, err := s.Store.BlobMeta(sum)
	if err != nil {
		tb.Fatalf("read photo %s: %v", sum, err)
	}
	return m
}
