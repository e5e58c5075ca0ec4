package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/uploads"
	"github.com/fieldsync/fieldsync/syncproto"
)

// serveConfig is everything `fieldsyncd serve` runs with.
type serveConfig struct {
	Data string
	Addr string
	// BasePath serves the API, the console, health and metrics under a
	// path such as /4110, as a province's proxy routes each city.
	BasePath  string
	LogLevel  slog.Level
	AccessTTL time.Duration
	// RefreshGrace is app.Config's: app.NoRefreshGrace when the setting
	// is 0s.
	RefreshGrace time.Duration
	BodyLimit    int64
	// MemoryLimit is the Go runtime's soft memory limit in bytes; 0
	// leaves the runtime's own (GOMEMLIMIT, else none).
	MemoryLimit int64
	// GCPercent is the Go runtime's GOGC: how far the heap may grow past
	// what is live before a collection, bounded by MemoryLimit.
	GCPercent int
	Deadlines syncproto.DeadlinePolicy

	// FeedLimit bounds a feed file, by the API or the console;
	// ConsoleFormLimit every other form of the console.
	FeedLimit        int64
	ConsoleFormLimit int64

	CadreRetention time.Duration
	RedactAfter    time.Duration

	// Listen holds the TLS files, the timeouts and the connection cap.
	Listen          httpapi.ListenConfig
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration

	// MetricsTokenFile names the file of the bearer token GET /metrics asks
	// for; validate reads it into MetricsToken.
	MetricsTokenFile string
	MetricsToken     string
	// MetricsOpen serves /metrics without a token on an address other
	// machines reach: it must be asked for (checkMetricsExposure).
	MetricsOpen bool

	// RateLimit and Lockout protect the server from floods and password
	// guessing (docs/SECURITY-OPERATIONS.md says why the defaults are what
	// they are). TrustedProxies is parsed into RateLimit by validate.
	RateLimit      httpapi.RateLimit
	TrustedProxies string
	Lockout        app.Lockout

	// MaxDevicesPerUser and DeviceExpiry bound the devices a user keeps
	// signed in (store.Options).
	MaxDevicesPerUser int
	DeviceExpiry      time.Duration

	// ConsoleIdle and ConsoleLifetime end the web console's sessions
	// (app.Config).
	ConsoleIdle     time.Duration
	ConsoleLifetime time.Duration

	// TombstoneHorizon is how long a device may stay away and still sync
	// on from its cursor (docs/COMPACTION.md).
	TombstoneHorizon time.Duration

	// UploadExpiry and MaxUploadsPerDevice bound the unfinished photo
	// uploads (PROTOCOL.md section 6a) a device can leave on disk.
	UploadExpiry        time.Duration
	MaxUploadsPerDevice int

	// PhotoQuota and OrphanPhotoGrace bound the photos a device can keep
	// on disk; WarningLimits how far its ops can make a warning grow
	// (docs/SECURITY-OPERATIONS.md).
	PhotoQuota       int64
	OrphanPhotoGrace time.Duration
	WarningLimits    syncproto.WarningLimits

	// The cluster settings (docs/CLUSTER.md): none of them, one node
	// with no raft at all. validate reads the secret and parses Peers.
	NodeID            string
	RaftAddr          string
	PeersList         string
	Peers             []cluster.Peer
	ClusterSecretFile string
	ClusterSecret     []byte
	// When a node snapshots its store and cuts raft's log: every
	// RaftSnapshotInterval it checks for RaftSnapshotThreshold new entries,
	// and keeps RaftTrailingLogs of them after the snapshot.
	RaftSnapshotInterval  time.Duration
	RaftSnapshotThreshold int
	RaftTrailingLogs      int
}

// clustered reports whether the server runs as a node of a cluster.
func (c *serveConfig) clustered() bool { return c.NodeID != "" }

// setting is one setting of `fieldsyncd serve`: the flag --NAME, the
// environment variable FIELDSYNC_NAME (dashes become underscores) and the
// line "NAME = value" in the config file.
type setting struct {
	name string
	// def is the default as one would write it; "" leaves the field zero.
	def  string
	help string
	// set parses a value into the config. Its error says what a good value
	// looks like; the caller adds where the value came from, and the value
	// itself: a secret belongs in a file that a setting names.
	set func(c *serveConfig, value string) error
}

// serveSettings is the one list of serve's settings: flags, environment,
// config file, --help and docs/CONFIGURATION.md all follow it (a test checks
// the doc). Adding a setting is a field in serveConfig, an entry here, a row
// in the doc, and a check in validate if it depends on another setting.
var serveSettings = []setting{
	{"data", "", "store directory (required)",
		to(text, func(c *serveConfig) *string { return &c.Data })},
	{"addr", "127.0.0.1:8080", "listen address HOST:PORT; port 0 picks one",
		to(hostPort, func(c *serveConfig) *string { return &c.Addr })},
	{"base-path", "", "serve everything (API, console, health, metrics) under this path, such as /4110, as a province's reverse proxy routes each city; empty serves at the root",
		to(basePath, func(c *serveConfig) *string { return &c.BasePath })},
	{"log-level", "info", "debug, info, warn or error",
		to(logLevel, func(c *serveConfig) *slog.Level { return &c.LogLevel })},
	{"access-ttl", "15m", "access token lifetime",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.AccessTTL })},
	{"refresh-grace", formatDuration(app.DefaultRefreshGrace), "how long after a refresh token is spent it may be presented again, until its successor is used, for a new pair: a phone that lost the answer stays signed in; 0s turns the grace off, at most 1h",
		to(refreshGrace, func(c *serveConfig) *time.Duration { return &c.RefreshGrace })},
	{"body-limit", strconv.Itoa(syncproto.MaxBodyBytes), "largest request body in bytes, after decompression",
		to(positiveInt64, func(c *serveConfig) *int64 { return &c.BodyLimit })},
	{"feed-limit", strconv.Itoa(feed.DefaultLimit), "largest feed file in bytes, CSV sent to the API or a file uploaded in the console",
		to(positiveInt64, func(c *serveConfig) *int64 { return &c.FeedLimit })},
	{"console-form-limit", strconv.Itoa(console.DefaultFormLimit), "largest body in bytes of a console form other than the sign-in (4 KiB) and the feed upload",
		to(positiveInt64, func(c *serveConfig) *int64 { return &c.ConsoleFormLimit })},
	deadline(syncproto.RiskHigh),
	deadline(syncproto.RiskMedium),
	deadline(syncproto.RiskLow),
	{"cadre-retention", formatDuration(store.DefaultCadreRetention), "how long after closing a warning stays on its cadre's phone",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.CadreRetention })},
	{"redact-after", formatDuration(store.DefaultRedactAfter), "how long after closing a warning's personal data is erased on the server; not shorter than cadre-retention",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.RedactAfter })},
	{"tombstone-horizon", formatDuration(store.DefaultTombstoneHorizon), "how long a device may stay away and surely sync on from its cursor; the daily index compaction drops older removes, and a device whose scope lost one it had not read starts over (at least 24h)",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.TombstoneHorizon })},
	{"upload-expiry", formatDuration(uploads.DefaultExpiry), "how long an unfinished photo upload may stay untouched before the hourly upkeep deletes it; the phone then starts it over",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.UploadExpiry })},
	{"max-uploads-per-device", strconv.Itoa(uploads.DefaultMaxPerDevice), "most unfinished photo uploads a device may keep; one more is refused until one finishes, is deleted or expires",
		to(positiveInt, func(c *serveConfig) *int { return &c.MaxUploadsPerDevice })},
	{"photo-quota", strconv.Itoa(store.DefaultPhotoQuota), "bytes of new photos a device may store per day (Beijing time); past it a photo is refused (photo_quota_exceeded) until midnight",
		to(positiveInt64, func(c *serveConfig) *int64 { return &c.PhotoQuota })},
	{"orphan-photo-grace", formatDuration(store.DefaultOrphanPhotoGrace), "how long a photo that no attempt names is kept before the hourly upkeep deletes it (at least 1h)",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.OrphanPhotoGrace })},
	{"max-attempts-per-warning", strconv.Itoa(syncproto.DefaultWarningLimits.MaxAttempts), "most attempts a warning may hold; one more is rejected (warning_full)",
		to(positiveInt, func(c *serveConfig) *int { return &c.WarningLimits.MaxAttempts })},
	{"max-warning-bytes", strconv.Itoa(syncproto.DefaultWarningLimits.MaxBytes), "most bytes a warning's MessagePack encoding may take after an attempt or escalation, leads' ops a quarter more; past it the op is rejected (warning_full); at least 65536",
		to(positiveInt, func(c *serveConfig) *int { return &c.WarningLimits.MaxBytes })},
	{"tls-cert", "", "PEM certificate chain; with tls-key the server speaks HTTPS and HTTP/2, and SIGHUP reloads both files",
		to(text, func(c *serveConfig) *string { return &c.Listen.CertFile })},
	{"tls-key", "", "PEM private key of tls-cert",
		to(text, func(c *serveConfig) *string { return &c.Listen.KeyFile })},
	{"read-header-timeout", formatDuration(httpapi.DefaultReadHeaderTimeout), "time allowed to read a request's headers",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Listen.ReadHeaderTimeout })},
	{"read-timeout", formatDuration(httpapi.DefaultReadTimeout), "time allowed to read a whole request, body included",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Listen.ReadTimeout })},
	{"write-timeout", formatDuration(httpapi.DefaultWriteTimeout), "time allowed to write a response",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Listen.WriteTimeout })},
	{"idle-timeout", formatDuration(httpapi.DefaultIdleTimeout), "how long a kept-alive connection may wait for its next request",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Listen.IdleTimeout })},
	{"max-conns", "4096", "most connections open at once; more wait until one closes",
		to(positiveInt, func(c *serveConfig) *int { return &c.Listen.MaxConns })},
	{"memory-limit", strconv.Itoa(defaultMemoryLimit), "soft limit in bytes of the server's own memory (the Go runtime's, not the store's memory-mapped file): near it the garbage collector runs sooner; GOMEMLIMIT in the environment wins over it; 0 sets none",
		to(nonNegativeInt64, func(c *serveConfig) *int64 { return &c.MemoryLimit })},
	{"gc-percent", strconv.Itoa(defaultGCPercent), "how far, in percent of the live heap, the heap may grow before the garbage collector runs (the Go runtime's GOGC), never past --memory-limit; GOGC in the environment wins over it",
		to(gcPercent, func(c *serveConfig) *int { return &c.GCPercent })},
	{"drain-delay", "0s", "on SIGINT/SIGTERM, how long readyz answers 503 before the server stops taking connections",
		to(nonNegativeDuration, func(c *serveConfig) *time.Duration { return &c.DrainDelay })},
	{"shutdown-timeout", "15s", "how long requests in flight may finish at shutdown",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.ShutdownTimeout })},
	{"device-rate", formatFloat(httpapi.DefaultDeviceRate), "requests a second a device may make once its burst is spent; negative turns the limit off",
		to(rate, func(c *serveConfig) *float64 { return &c.RateLimit.DeviceRate })},
	{"device-burst", strconv.Itoa(httpapi.DefaultDeviceBurst), "requests a device may make at once",
		to(positiveInt, func(c *serveConfig) *int { return &c.RateLimit.DeviceBurst })},
	{"ip-rate", formatFloat(httpapi.DefaultIPRate), "sign-ins and token refreshes a second per client address once its burst is spent; negative turns the limit off",
		to(rate, func(c *serveConfig) *float64 { return &c.RateLimit.IPRate })},
	{"ip-burst", strconv.Itoa(httpapi.DefaultIPBurst), "sign-ins and token refreshes a client address may make at once",
		to(positiveInt, func(c *serveConfig) *int { return &c.RateLimit.IPBurst })},
	{"trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client",
		to(text, func(c *serveConfig) *string { return &c.TrustedProxies })},
	{"lockout-threshold", strconv.Itoa(app.DefaultLockoutThreshold), "failed sign-ins of one username from one address within lockout-window that lock it for that address; negative turns the lockout off",
		to(nonZeroInt, func(c *serveConfig) *int { return &c.Lockout.Threshold })},
	{"lockout-window", formatDuration(app.DefaultLockoutWindow), "window in which failed sign-ins of a username are counted",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Lockout.Window })},
	{"lockout-duration", formatDuration(app.DefaultLockoutDuration), "first lockout of a username; each further one in a row doubles, up to 4h",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.Lockout.Duration })},
	{"lockout-user-threshold", strconv.Itoa(app.DefaultLockoutUserThreshold), "failed sign-ins of one username from all addresses together within lockout-window that lock it for every address; above lockout-threshold; negative turns this limit off",
		to(nonZeroInt, func(c *serveConfig) *int { return &c.Lockout.UserThreshold })},
	{"max-devices-per-user", strconv.Itoa(store.DefaultMaxDevicesPerUser), "devices one user may have signed in at once; a sign-in from one more is refused (too_many_devices) until one signs out, is revoked or expires; negative turns the cap off",
		to(nonZeroInt, func(c *serveConfig) *int { return &c.MaxDevicesPerUser })},
	{"device-expiry", formatDuration(store.DefaultDeviceExpiry), "how long a device may go unseen before it must sign in again and stops counting toward max-devices-per-user; the daily upkeep then forgets it if it never sent an op (at least 24h)",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.DeviceExpiry })},
	{"console-idle", formatDuration(app.DefaultConsoleIdle), "how long a signed-in browser of the console may go unused before its session ends",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.ConsoleIdle })},
	{"console-lifetime", formatDuration(app.DefaultConsoleLifetime), "how long after its sign-in a browser's console session ends, used or not; not shorter than console-idle",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.ConsoleLifetime })},
	{"metrics-token-file", "", "file holding the bearer token GET /metrics asks for; without it /metrics needs no token, which is allowed only on a loopback address or with metrics-open",
		to(text, func(c *serveConfig) *string { return &c.MetricsTokenFile })},
	{"metrics-open", "false", "true serves GET /metrics without a token on an address other machines reach (a warning is logged at start); firewall the port",
		to(boolean, func(c *serveConfig) *bool { return &c.MetricsOpen })},
	{"node-id", "", "this node's name in its cluster, for ever; with raft-addr and cluster-secret-file it makes the server a node of a cluster (docs/CLUSTER.md); without, one server with no cluster",
		to(text, func(c *serveConfig) *string { return &c.NodeID })},
	{"raft-addr", "", "HOST:PORT of this node's cluster port, as the other nodes reach it; only nodes holding the cluster secret are served there",
		to(hostPort, func(c *serveConfig) *string { return &c.RaftAddr })},
	{"peers", "", "comma-separated ID=HOST:PORT of every founding node, this one included, to start a new cluster; leave it out on a node that joins (fieldsyncd cluster add)",
		to(text, func(c *serveConfig) *string { return &c.PeersList })},
	{"cluster-secret-file", "", "file holding the cluster secret, the same on every node (at least 32 bytes); node-to-node traffic proves it",
		to(text, func(c *serveConfig) *string { return &c.ClusterSecretFile })},
	{"raft-snapshot-interval", formatDuration(defaultRaftSnapshotInterval), "on a node of a cluster, how often it checks whether raft-snapshot-threshold entries came since its last snapshot (each check falls within one to two intervals)",
		to(positiveDuration, func(c *serveConfig) *time.Duration { return &c.RaftSnapshotInterval })},
	{"raft-snapshot-threshold", strconv.Itoa(defaultRaftSnapshotThreshold), "on a node of a cluster, how many new raft entries make it snapshot its store and cut raft's log",
		to(positiveInt, func(c *serveConfig) *int { return &c.RaftSnapshotThreshold })},
	{"raft-trailing-logs", strconv.Itoa(cluster.DefaultTrailingLogs), "on a node of a cluster, how many entries raft's log keeps after a snapshot: a node further behind catches up from a snapshot; the entries hold personal data, so keep it short",
		to(positiveInt, func(c *serveConfig) *int { return &c.RaftTrailingLogs })},
}

// Raft's own defaults of the snapshot settings.
const (
	defaultRaftSnapshotInterval  = 120 * time.Second
	defaultRaftSnapshotThreshold = 8192
)

// deadline is the setting of one risk's deadline.
func deadline(risk string) setting {
	return setting{"deadline-" + risk, formatDuration(syncproto.DefaultDeadlines[risk]),
		fmt.Sprintf("time allowed to reach a %s-risk warning when the feed gives no deadline", risk),
		func(c *serveConfig, v string) error {
			d, err := positiveDuration(v)
			if err != nil {
				return err
			}
			c.Deadlines[risk] = d
			return nil
		}}
}

// Lower bounds of the photo and warning limits.
const (
	minOrphanPhotoGrace = time.Hour
	minWarningBytes     = 64 << 10
)

// validate checks what no single setting can: required settings and
// settings that depend on each other.
func (c *serveConfig) validate() error {
	if c.Data == "" {
		return errors.New("--data is required (or FIELDSYNC_DATA, or data in the config file)")
	}
	if c.RedactAfter < c.CadreRetention {
		return fmt.Errorf("--redact-after (%s) must not be shorter than --cadre-retention (%s): the server would erase what phones still show",
			formatDuration(c.RedactAfter), formatDuration(c.CadreRetention))
	}
	if c.TombstoneHorizon < store.MinTombstoneHorizon {
		return fmt.Errorf("--tombstone-horizon (%s) must be at least %s: a phone a day out of signal should sync on, not start over",
			formatDuration(c.TombstoneHorizon), formatDuration(store.MinTombstoneHorizon))
	}
	if c.Lockout.Threshold > 0 && c.Lockout.UserThreshold > 0 && c.Lockout.UserThreshold <= c.Lockout.Threshold {
		return fmt.Errorf("--lockout-user-threshold (%d) must be above --lockout-threshold (%d): else one address locks a username for everyone",
			c.Lockout.UserThreshold, c.Lockout.Threshold)
	}
	if c.DeviceExpiry < store.MinDeviceExpiry {
		return fmt.Errorf("--device-expiry (%s) must be at least %s: a phone a day out of signal should not have to sign in again",
			formatDuration(c.DeviceExpiry), formatDuration(store.MinDeviceExpiry))
	}
	if c.ConsoleLifetime < c.ConsoleIdle {
		return fmt.Errorf("--console-lifetime (%s) must not be shorter than --console-idle (%s)",
			formatDuration(c.ConsoleLifetime), formatDuration(c.ConsoleIdle))
	}
	if c.OrphanPhotoGrace < minOrphanPhotoGrace {
		return fmt.Errorf("--orphan-photo-grace (%s) must be at least %s: a phone needs the time to push the attempt that names a photo it sent",
			formatDuration(c.OrphanPhotoGrace), formatDuration(minOrphanPhotoGrace))
	}
	if c.WarningLimits.MaxBytes < minWarningBytes {
		return fmt.Errorf("--max-warning-bytes (%d) must be at least %d: a warning with a few attempts of the longest notes must fit",
			c.WarningLimits.MaxBytes, minWarningBytes)
	}
	if (c.Listen.CertFile == "") != (c.Listen.KeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.Listen.TLS() {
		if _, err := httpapi.LoadCertificate(c.Listen.CertFile, c.Listen.KeyFile); err != nil {
			return err
		}
	}
	trusted, err := httpapi.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	c.RateLimit.TrustedProxies = trusted
	if c.MetricsTokenFile != "" {
		b, err := os.ReadFile(c.MetricsTokenFile)
		if err != nil {
			return fmt.Errorf("--metrics-token-file: %w", err)
		}
		if c.MetricsToken = strings.TrimSpace(string(b)); c.MetricsToken == "" {
			return fmt.Errorf("--metrics-token-file %s is empty", c.MetricsTokenFile)
		}
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	return checkMetricsExposure(c.Addr, c.MetricsToken != "", c.MetricsOpen)
}

// validateCluster checks the cluster settings go together, reads the
// secret and parses the peers.
func (c *serveConfig) validateCluster() error {
	if c.NodeID == "" && c.RaftAddr == "" && c.PeersList == "" && c.ClusterSecretFile == "" {
		return nil
	}
	if c.NodeID == "" || c.RaftAddr == "" || c.ClusterSecretFile == "" {
		return errors.New("--node-id, --raft-addr and --cluster-secret-file go together: give all three to run a node of a cluster, or none for one server")
	}
	if host, _, _ := net.SplitHostPort(c.RaftAddr); host == "" || net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("--raft-addr %s: give the address the other nodes reach this one at, not a wildcard", c.RaftAddr)
	}
	secret, err := cluster.LoadSecret(c.ClusterSecretFile)
	if err != nil {
		return fmt.Errorf("--cluster-secret-file: %w", err)
	}
	c.ClusterSecret = secret
	c.Peers = nil
	if c.PeersList == "" {
		return nil
	}
	self := false
	for _, p := range strings.Split(c.PeersList, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if _, err := hostPort(addr); !ok || id == "" || err != nil {
			return fmt.Errorf("--peers: %q is not ID=HOST:PORT", p)
		}
		if id == c.NodeID {
			if addr != c.RaftAddr {
				return fmt.Errorf("--peers gives %s the address %s, --raft-addr %s", id, addr, c.RaftAddr)
			}
			self = true
		}
		c.Peers = append(c.Peers, cluster.Peer{ID: id, Addr: addr})
	}
	if !self {
		return fmt.Errorf("--peers must list this node, %s=%s", c.NodeID, c.RaftAddr)
	}
	return nil
}

// checkMetricsExposure refuses to serve GET /metrics without a token to
// other machines unless the operator asked for it: its figures say how
// busy the center is and when, and an open endpoint on a public address
// is more often an oversight than a choice.
func checkMetricsExposure(addr string, token, open bool) error {
	switch {
	case token && open:
		return errors.New("--metrics-open and --metrics-token-file contradict each other: give one of them")
	case token || open || isLoopback(addr):
		return nil
	}
	return fmt.Errorf("--addr %s is reachable from other machines, and GET /metrics would answer them without a token: "+
		"give --metrics-token-file, or --metrics-open true to serve it without one on purpose (docs/METRICS.md)", addr)
}

// isLoopback reports whether a listen address takes connections from this
// machine only. An empty host, a wildcard or any name but localhost may
// be reached from elsewhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// envName is the environment variable of a setting.
func envName(name string) string {
	return "FIELDSYNC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configEnv names the config file when --config is not given.
var configEnv = envName("config")

// loadServeConfig reads serve's settings: the defaults, overridden by the
// config file (--config or FIELDSYNC_CONFIG), overridden by the environment,
// overridden by the flags in args; then it validates the result. It returns
// flag.ErrHelp when args ask for help.
func loadServeConfig(args []string, lookupEnv func(string) (string, bool)) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	configFile := fs.String("config", "", "")
	type flagValue struct{ name, value string }
	var given []flagValue
	byName := map[string]setting{}
	for _, s := range serveSettings {
		byName[s.name] = s
		fs.Func(s.name, s.help, func(v string) error {
			given = append(given, flagValue{s.name, v})
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (fieldsyncd serve --help lists the settings)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	c := &serveConfig{Deadlines: syncproto.DeadlinePolicy{}}
	for _, s := range serveSettings {
		if s.def == "" {
			continue
		}
		if err := s.set(c, s.def); err != nil {
			return nil, fmt.Errorf("default of --%s: %w", s.name, err)
		}
	}
	if *configFile == "" {
		*configFile, _ = lookupEnv(configEnv)
	}
	if *configFile != "" {
		if err := c.readFile(*configFile, byName); err != nil {
			return nil, err
		}
	}
	for _, s := range serveSettings {
		// An empty variable counts as unset, as shells and unit files
		// often leave one.
		if v, ok := lookupEnv(envName(s.name)); ok && v != "" {
			if err := s.set(c, v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", envName(s.name), v, err)
			}
		}
	}
	for _, f := range given {
		if err := byName[f.name].set(c, f.value); err != nil {
			return nil, fmt.Errorf("--%s %q: %w", f.name, f.value, err)
		}
	}
	return c, c.validate()
}

// readFile applies a config file of "NAME = value" lines. Blank lines and
// lines starting with # are skipped; an unknown name, a name given twice, a
// line without "=" and a bad value are errors naming the file and line.
func (c *serveConfig) readFile(path string, settings map[string]setting) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	seen := map[string]int{}
	lines := bufio.NewScanner(f)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: want a line NAME = value", path, n)
		}
		s, known := settings[name]
		if !known {
			return fmt.Errorf("%s:%d: unknown setting %q (fieldsyncd serve --help lists them)", path, n, name)
		}
		if first, dup := seen[name]; dup {
			return fmt.Errorf("%s:%d: %s is already set on line %d", path, n, name, first)
		}
		seen[name] = n
		if err := s.set(c, value); err != nil {
			return fmt.Errorf("%s:%d: %s = %q: %w", path, n, name, value, err)
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// printServeHelp lists every setting with its environment variable and
// default, in the table's order.
func printServeHelp(w io.Writer) {
	fmt.Fprintf(w, `usage: fieldsyncd serve [--config FILE] [--NAME VALUE ...]

Serves a store until SIGINT or SIGTERM; SIGHUP reloads the TLS certificate.
Each setting is a flag --NAME, an environment variable, or a line
"NAME = value" in the config file. A flag wins over the environment, the
environment over the file, the file over the default. Durations are
written 90s, 15m, 2h30m or 30d.

  --config FILE  (%s)
      a file of "NAME = value" lines; # starts a comment line
`, configEnv)
	for _, s := range serveSettings {
		def := ""
		if s.def != "" {
			def = ", default " + s.def
		}
		fmt.Fprintf(w, "  --%s  (%s%s)\n      %s\n", s.name, envName(s.name), def, s.help)
	}
}

// to makes a setting's set function from a parser and the field it fills.
func to[T any](parse func(string) (T, error), field func(*serveConfig) *T) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		x, err := parse(v)
		if err != nil {
			return err
		}
		*field(c) = x
		return nil
	}
}

func text(v string) (string, error) { return v, nil }

func boolean(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func hostPort(v string) (string, error) {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", errors.New("want HOST:PORT, such as 0.0.0.0:443 or 127.0.0.1:8080")
	}
	return v, nil
}

func basePath(v string) (string, error) { return httpapi.CleanBasePath(v) }

func logLevel(v string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

// parseDuration takes Go durations (90s, 15m, 2h30m) and whole days (30d),
// which suit retention periods.
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err == nil && n >= 0 && n < 100*365 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(v)
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 90s, 15m, 2h or 30d")
	}
	return d, nil
}

func nonNegativeDuration(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration such as 0s, 10s or 1m")
	}
	return d, nil
}

// maxRefreshGrace bounds --refresh-grace: the window is how long a spent
// refresh token, stolen, is still taken for a retry while the phone has
// not used its successor. Retries after a lost answer come within minutes;
// an hour is ample.
const maxRefreshGrace = time.Hour

// refreshGrace is a grace window from 0s (off, as app.NoRefreshGrace) to
// maxRefreshGrace.
func refreshGrace(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err != nil || d < 0 || d > maxRefreshGrace {
		return 0, fmt.Errorf("want a duration from 0s (no grace) to %s, such as 5m", formatDuration(maxRefreshGrace))
	}
	if d == 0 {
		return app.NoRefreshGrace, nil
	}
	return d, nil
}

// defaultMemoryLimit is 180 MiB: DESIGN.md's 200 MiB for a city of a
// million warnings and a thousand phones, less room for what the runtime
// does not count. Without it the collector lets the heap reach twice what
// is live, and a burst of pushes made that 350 MiB (examples/scale).
const defaultMemoryLimit = 180 << 20

// defaultGCPercent is 400, not the runtime's 100: the write path
// allocates fast (bbolt materialises every page a commit touches), and
// at 100 the collector's marking took an eighth of the CPU of
// examples/load. With the memory limit bounding the heap, a larger
// percent only lets a small heap grow toward the limit between
// collections; a heap near the limit is collected as often as before.
const defaultGCPercent = 400

func gcPercent(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 || n > 10000 {
		return 0, errors.New("want a whole number from 10 to 10000")
	}
	return n, nil
}

func nonNegativeInt64(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number of bytes, 0 or more")
	}
	return n, nil
}

func positiveInt64(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive whole number")
	}
	return n, nil
}

// rate is requests a second: positive, or negative for no limit.
func rate(v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, errors.New("want requests a second such as 10 or 0.5, or -1 for no limit")
	}
	return r, nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// nonZeroInt is a count, or a negative number to turn a limit off.
func nonZeroInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n == 0 {
		return 0, errors.New("want a whole number such as 5, or -1 to turn it off")
	}
	return n, nil
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive whole number")
	}
	return n, nil
}

// formatDuration writes a default the way a person would: 30d, 48h, 15m,
// 10s (days from a week up, where hours stop being the natural unit).
func formatDuration(d time.Duration) string {
	if d >= 7*24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String() // such as 2h0m0s, 1h30m0s, 15m0s, 10s
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
