package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/uploads"
	"github.com/fieldsync/fieldsync/syncproto"
)

// env is a fake environment for loadServeConfig.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// adminPassword is the admin's password in the stores initStore makes.
const adminPassword = "admin-password-1"

// initStore makes a store with "fieldsyncd init" in a new folder, with
// adminPassword, and returns the folder.
func initStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := run(context.Background(), []string{"init", "--data", dir, "--admin-password-file", writeFile(t, adminPassword+"\n")}, io.Discard, io.Discard); err != nil {
		t.Fatalf("init: %v", err)
	}
	return dir
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fieldsyncd.conf")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeConfig_Defaults(t *testing.T) {
	c, err := loadServeConfig([]string{"--data", "/srv/fieldsync"}, env{}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		Data: "/srv/fieldsync", Addr: "127.0.0.1:8080", LogLevel: slog.LevelInfo,
		AccessTTL: 15 * time.Minute, RefreshGrace: app.DefaultRefreshGrace, BodyLimit: syncproto.MaxBodyBytes, MemoryLimit: 180 << 20, GCPercent: 400,
		FeedLimit: feed.DefaultLimit, ConsoleFormLimit: console.DefaultFormLimit,
		CadreRetention: store.DefaultCadreRetention, RedactAfter: store.DefaultRedactAfter,
		Listen: httpapi.ListenConfig{
			ReadHeaderTimeout: httpapi.DefaultReadHeaderTimeout, ReadTimeout: httpapi.DefaultReadTimeout,
			WriteTimeout: httpapi.DefaultWriteTimeout, IdleTimeout: httpapi.DefaultIdleTimeout,
			MaxConns: 4096,
		},
		ShutdownTimeout:  15 * time.Second,
		TombstoneHorizon: store.DefaultTombstoneHorizon,
		UploadExpiry:     uploads.DefaultExpiry, MaxUploadsPerDevice: uploads.DefaultMaxPerDevice,
		PhotoQuota: store.DefaultPhotoQuota, OrphanPhotoGrace: store.DefaultOrphanPhotoGrace,
		WarningLimits: syncproto.DefaultWarningLimits,
		RateLimit: httpapi.RateLimit{
			DeviceRate: httpapi.DefaultDeviceRate, DeviceBurst: httpapi.DefaultDeviceBurst,
			IPRate: httpapi.DefaultIPRate, IPBurst: httpapi.DefaultIPBurst,
		},
		Lockout: app.Lockout{Threshold: app.DefaultLockoutThreshold, UserThreshold: app.DefaultLockoutUserThreshold,
			Window: app.DefaultLockoutWindow, Duration: app.DefaultLockoutDuration},
		MaxDevicesPerUser: store.DefaultMaxDevicesPerUser, DeviceExpiry: store.DefaultDeviceExpiry,
		ConsoleIdle: app.DefaultConsoleIdle, ConsoleLifetime: app.DefaultConsoleLifetime,
		RaftSnapshotInterval: 2 * time.Minute, RaftSnapshotThreshold: 8192, RaftTrailingLogs: cluster.DefaultTrailingLogs,
	}
	for risk, d := range syncproto.DefaultDeadlines {
		if c.Deadlines[risk] != d {
			t.Errorf("deadline %s = %s, want %s", risk, c.Deadlines[risk], d)
		}
	}
	c.Deadlines = nil
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestServeConfig_Precedence(t *testing.T) {
	file := writeFile(t, `
# fieldsyncd serve settings
data = /from/file
access-ttl = 1m
deadline-high = 3h
body-limit   =   100

read-timeout = 30s
`)
	environment := env{
		"FIELDSYNC_CONFIG":        file,
		"FIELDSYNC_ACCESS_TTL":    "2m",
		"FIELDSYNC_DEADLINE_HIGH": "4h",
		"FIELDSYNC_BODY_LIMIT":    "", // empty counts as unset
		"FIELDSYNC_IDLE_TIMEOUT":  "5m",
	}
	c, err := loadServeConfig([]string{"--access-ttl", "3m", "--idle-timeout=6m", "--max-conns", "7"}, environment.lookup)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"access-ttl: flag over env over file", c.AccessTTL, 3 * time.Minute},
		{"idle-timeout: flag over env", c.Listen.IdleTimeout, 6 * time.Minute},
		{"max-conns: flag over default", c.Listen.MaxConns, 7},
		{"deadline-high: env over file", c.Deadlines[syncproto.RiskHigh], 4 * time.Hour},
		{"body-limit: file over default, empty env ignored", c.BodyLimit, int64(100)},
		{"read-timeout: file over default", c.Listen.ReadTimeout, 30 * time.Second},
		{"data: file", c.Data, "/from/file"},
		{"deadline-low: default", c.Deadlines[syncproto.RiskLow], syncproto.DefaultDeadlines[syncproto.RiskLow]},
		{"write-timeout: default", c.Listen.WriteTimeout, httpapi.DefaultWriteTimeout},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// --config wins over FIELDSYNC_CONFIG.
	other := writeFile(t, "data = /from/other\n")
	c, err = loadServeConfig([]string{"--config", other}, environment.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/other" || c.AccessTTL != 2*time.Minute {
		t.Fatalf("with --config: data %q access-ttl %s, want /from/other and 2m from the environment", c.Data, c.AccessTTL)
	}
	// 0s turns the refresh grace off; app.Config takes a negative for that,
	// since its 0 is the default.
	for v, want := range map[string]time.Duration{"0s": app.NoRefreshGrace, "90s": 90 * time.Second, "1h": time.Hour} {
		c, err := loadServeConfig([]string{"--data", "d", "--refresh-grace", v}, env{}.lookup)
		if err != nil {
			t.Errorf("--refresh-grace %s: %v", v, err)
		} else if c.RefreshGrace != want {
			t.Errorf("--refresh-grace %s: %v, want %v", v, c.RefreshGrace, want)
		}
	}
	// A base path is a path; "/" is the root, as empty is.
	for v, want := range map[string]string{"/4110": "/4110", "/henan/4110": "/henan/4110", "/": ""} {
		c, err := loadServeConfig([]string{"--data", "d", "--base-path", v}, env{}.lookup)
		if err != nil {
			t.Errorf("--base-path %s: %v", v, err)
		} else if c.BasePath != want {
			t.Errorf("--base-path %s: %q, want %q", v, c.BasePath, want)
		}
	}
	// Days are a duration too.
	c, err = loadServeConfig([]string{"--data", "d", "--cadre-retention", "7d", "--redact-after", "90d"}, env{}.lookup)
	if err != nil || c.CadreRetention != 7*24*time.Hour || c.RedactAfter != 90*24*time.Hour {
		t.Fatalf("days: %v %s %s", err, c.CadreRetention, c.RedactAfter)
	}
}

func TestServeConfig_Errors(t *testing.T) {
	certDir := t.TempDir()
	certFile, keyFile, _ := servertest.WriteCertificate(t, certDir, "x", 1)
	_, otherKey, _ := servertest.WriteCertificate(t, t.TempDir(), "y", 2)
	cases := []struct {
		name string
		args []string
		env  env
		file string // config file content, given by --config when set
		want []string
	}{
		{name: "NoData", want: []string{"--data is required"}},
		{name: "UnknownFlag", args: []string{"--data", "d", "--colour", "red"}, want: []string{"-colour", "serve --help"}},
		{name: "Argument", args: []string{"--data", "d", "extra"}, want: []string{`unexpected argument "extra"`}},
		{name: "BadDurationFlag", args: []string{"--data", "d", "--access-ttl", "soon"}, want: []string{`--access-ttl "soon"`, "positive duration"}},
		{name: "ZeroDuration", args: []string{"--data", "d", "--read-timeout", "0s"}, want: []string{"--read-timeout", "positive duration"}},
		{name: "NegativeDrainDelay", args: []string{"--data", "d", "--drain-delay", "-1s"}, want: []string{"--drain-delay"}},
		{name: "BadDeadline", args: []string{"--data", "d", "--deadline-high", "-2h"}, want: []string{"--deadline-high"}},
		{name: "NegativeRefreshGrace", args: []string{"--data", "d", "--refresh-grace", "-1m"}, want: []string{"--refresh-grace", "from 0s (no grace) to 1h"}},
		{name: "LongRefreshGrace", args: []string{"--data", "d", "--refresh-grace", "2h"}, want: []string{"--refresh-grace", "from 0s (no grace) to 1h"}},
		{name: "ZeroMaxConns", args: []string{"--data", "d", "--max-conns", "0"}, want: []string{"--max-conns", "positive whole number"}},
		{name: "NegativeBodyLimit", args: []string{"--data", "d", "--body-limit", "-5"}, want: []string{"--body-limit", "positive whole number"}},
		{name: "ShortTombstoneHorizon", args: []string{"--data", "d", "--tombstone-horizon", "2h"}, want: []string{"--tombstone-horizon (2h) must be at least 24h"}},
		{name: "ShortOrphanPhotoGrace", args: []string{"--data", "d", "--orphan-photo-grace", "10m"}, want: []string{"--orphan-photo-grace (10m) must be at least 1h"}},
		{name: "SmallWarningBytes", args: []string{"--data", "d", "--max-warning-bytes", "1000"}, want: []string{"--max-warning-bytes (1000) must be at least 65536"}},
		{name: "ZeroPhotoQuota", args: []string{"--data", "d", "--photo-quota", "0"}, want: []string{"--photo-quota", "positive whole number"}},
		{name: "ZeroRate", args: []string{"--data", "d", "--device-rate", "0"}, want: []string{"--device-rate", "-1 for no limit"}},
		{name: "ZeroLockoutThreshold", args: []string{"--data", "d", "--lockout-threshold", "0"}, want: []string{"--lockout-threshold", "-1 to turn it off"}},
		{name: "UserThresholdNotAbove", args: []string{"--data", "d", "--lockout-threshold", "10", "--lockout-user-threshold", "10"}, want: []string{"--lockout-user-threshold (10) must be above --lockout-threshold (10)"}},
		{name: "ZeroMaxDevices", args: []string{"--data", "d", "--max-devices-per-user", "0"}, want: []string{"--max-devices-per-user", "-1 to turn it off"}},
		{name: "ShortDeviceExpiry", args: []string{"--data", "d", "--device-expiry", "6h"}, want: []string{"--device-expiry (6h) must be at least 24h"}},
		{name: "BadTrustedProxy", args: []string{"--data", "d", "--trusted-proxies", "10.0.0.0/8,proxy.local"}, want: []string{"--trusted-proxies", "proxy.local"}},
		{name: "EmptyMetricsToken", args: []string{"--data", "d", "--metrics-token-file", os.DevNull}, want: []string{"--metrics-token-file", "is empty"}},
		{name: "BadAddr", args: []string{"--data", "d", "--addr", "8080"}, want: []string{"--addr", "HOST:PORT"}},
		{name: "BasePathTrailingSlash", args: []string{"--data", "d", "--base-path", "/4110/"}, want: []string{"--base-path", "such as /4110"}},
		{name: "BasePathRelative", args: []string{"--data", "d", "--base-path", "4110"}, want: []string{"--base-path", "such as /4110"}},
		{name: "BasePathDotDot", file: "data = d\nbase-path = /4110/../4111\n", want: []string{"fieldsyncd.conf:2:", "base-path", "such as /4110"}},
		{name: "BasePathSpace", args: []string{"--data", "d"}, env: env{"FIELDSYNC_BASE_PATH": "/许昌 市"}, want: []string{"FIELDSYNC_BASE_PATH", "such as /4110"}},
		{name: "BadLogLevel", args: []string{"--data", "d", "--log-level", "loud"}, want: []string{"--log-level", "debug, info, warn or error"}},
		{name: "BadEnv", args: []string{"--data", "d"}, env: env{"FIELDSYNC_WRITE_TIMEOUT": "forever"}, want: []string{"FIELDSYNC_WRITE_TIMEOUT", "forever", "positive duration"}},
		{name: "RedactBeforeArchive", args: []string{"--data", "d", "--cadre-retention", "60d", "--redact-after", "30d"}, want: []string{"--redact-after (30d) must not be shorter than --cadre-retention (60d)"}},
		{name: "CertWithoutKey", args: []string{"--data", "d", "--tls-cert", certFile}, want: []string{"--tls-cert and --tls-key go together"}},
		{name: "KeyWithoutCert", args: []string{"--data", "d"}, env: env{"FIELDSYNC_TLS_KEY": keyFile}, want: []string{"--tls-cert and --tls-key go together"}},
		{name: "UnreadableCert", args: []string{"--data", "d", "--tls-cert", certFile + ".missing", "--tls-key", keyFile}, want: []string{"load TLS certificate", "cert.pem.missing"}},
		{name: "KeyOfAnotherCert", args: []string{"--data", "d", "--tls-cert", certFile, "--tls-key", otherKey}, want: []string{"load TLS certificate", "private key does not match"}},
		{name: "MissingConfigFile", args: []string{"--data", "d", "--config", filepath.Join(certDir, "none.conf")}, want: []string{"config file", "none.conf"}},
		{name: "FileUnknownName", file: "data = d\n\n# retention\ncolour = red\n", want: []string{"fieldsyncd.conf:4:", `unknown setting "colour"`}},
		{name: "FileDuplicate", file: "data = d\naccess-ttl = 1m\naccess-ttl = 2m\n", want: []string{"fieldsyncd.conf:3:", "already set on line 2"}},
		{name: "FileNoEquals", file: "data = d\nmax-conns 10\n", want: []string{"fieldsyncd.conf:2:", "NAME = value"}},
		{name: "FileBadValue", file: "data = d\nidle-timeout = 2 minutes\n", want: []string{"fieldsyncd.conf:2:", "idle-timeout", "positive duration"}},
		{name: "FileNoConfigInConfig", file: "config = other.conf\n", want: []string{"fieldsyncd.conf:1:", `unknown setting "config"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			if tc.env == nil {
				tc.env = env{}
			}
			_, err := loadServeConfig(args, tc.env.lookup)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// An invalid configuration stops serve before it opens the store.
func TestServe_InvalidConfigOpensNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	err := run(context.Background(), []string{"serve", "--data", dir, "--max-conns", "-1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--max-conns") {
		t.Fatalf("serve with --max-conns -1: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the store directory was touched: %v", err)
	}
}

func TestServe_Help(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"serve", "--help"}, &out, io.Discard); err != nil {
		t.Fatalf("serve --help: %v", err)
	}
	help := out.String()
	for _, want := range []string{"--config FILE", "FIELDSYNC_CONFIG", "SIGHUP"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, s := range serveSettings {
		line := "--" + s.name + "  (" + envName(s.name)
		if s.def != "" {
			line += ", default " + s.def
		}
		line += ")\n      " + s.help + "\n"
		if !strings.Contains(help, line) {
			t.Errorf("help lacks the setting %s as %q", s.name, line)
		}
	}
}

// Every default must parse: a typo in the table would otherwise surface
// only when someone leaves the setting out.
func TestServeSettings_Table(t *testing.T) {
	seen := map[string]bool{"config": true}
	for _, s := range serveSettings {
		if seen[s.name] {
			t.Errorf("%s is in the table twice", s.name)
		}
		seen[s.name] = true
		if s.help == "" || s.set == nil {
			t.Errorf("%s lacks help or a parser", s.name)
		}
		if s.def != "" {
			if err := s.set(&serveConfig{Deadlines: syncproto.DeadlinePolicy{}}, s.def); err != nil {
				t.Errorf("default of %s: %v", s.name, err)
			}
		}
	}
}

// docs/CONFIGURATION.md lists every setting with its environment variable
// and default, and nothing else, in its section Settings.
func TestServeSettings_Documented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "CONFIGURATION.md"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ env, def string }
	rows := map[string]row{}
	section := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		// Other commands' flags (fieldsyncd demo) have tables of their own.
		if section != "## Settings" || !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("settings row %q: want | flag | variable | default | meaning |", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		name = strings.Fields(strings.TrimPrefix(name, "--"))[0]
		rows[name] = row{strings.Trim(strings.TrimSpace(cells[2]), "`"), strings.Trim(strings.TrimSpace(cells[3]), "`")}
	}
	want := map[string]row{"config": {configEnv, "none"}}
	for _, s := range serveSettings {
		def := s.def
		if def == "" {
			def = "none"
		}
		want[s.name] = row{envName(s.name), def}
	}
	for name, w := range want {
		got, ok := rows[name]
		if !ok {
			t.Errorf("docs/CONFIGURATION.md has no row for --%s", name)
			continue
		}
		if got != w {
			t.Errorf("docs/CONFIGURATION.md: --%s has %+v, want %+v", name, got, w)
		}
	}
	for name := range rows {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/CONFIGURATION.md documents --%s, which serve does not have", name)
		}
	}
}

// asOwnProcess runs the rest of the test as serve runs in fieldsyncd's
// own process, with the environment variable env unset; restore puts the
// runtime's setting back at the end.
func asOwnProcess(t *testing.T, env string, restore func()) {
	t.Setenv(env, "")
	os.Unsetenv(env)
	ownProcess = true
	t.Cleanup(func() {
		ownProcess = false
		restore()
	})
}

// --memory-limit becomes the Go runtime's soft memory limit when serve
// runs as fieldsyncd's own process; 0 leaves the runtime's, and a
// negative number is refused.
func TestServe_MemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	asOwnProcess(t, "GOMEMLIMIT", func() { debug.SetMemoryLimit(prev) })
	_, stop := startRun(t, "serve", "--data", initStore(t), "--addr", "127.0.0.1:0", "--log-level", "error", "--memory-limit", "123456789")
	if got := debug.SetMemoryLimit(-1); got != 123456789 {
		t.Errorf("the runtime's memory limit is %d while serve runs with --memory-limit 123456789", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// An operator's GOMEMLIMIT wins over the setting.
	debug.SetMemoryLimit(prev)
	os.Setenv("GOMEMLIMIT", "1GiB")
	applyMemoryLimit(123456789, slog.New(slog.DiscardHandler))
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("with GOMEMLIMIT set, --memory-limit 123456789 made the limit %d", got)
	}
	if _, err := loadServeConfig([]string{"--data", "/srv/fieldsync", "--memory-limit", "-1"}, env{}.lookup); err == nil {
		t.Error("--memory-limit -1 was taken")
	}
}

// --gc-percent becomes the runtime's GC percent when serve runs as its
// own process, 400 when not given; GOGC in the environment wins, and a
// percent out of range is refused.
func TestServe_GCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	asOwnProcess(t, "GOGC", func() { debug.SetGCPercent(prev) })
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, defaultGCPercent}, {[]string{"--gc-percent", "250"}, 250}} {
		debug.SetGCPercent(100)
		args := append([]string{"serve", "--data", initStore(t), "--addr", "127.0.0.1:0", "--log-level", "error"}, tc.args...)
		_, stop := startRun(t, args...)
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("serve %v: the runtime's GC percent is %d, want %d", tc.args, got, tc.want)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	os.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	applyGCPercent(250, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("with GOGC=150 set, --gc-percent 250 made the percent %d", got)
	}
	for _, bad := range []string{"0", "-5", "9", "10001", "off"} {
		if _, err := loadServeConfig([]string{"--data", "/srv/fieldsync", "--gc-percent", bad}, env{}.lookup); err == nil {
			t.Errorf("--gc-percent %s was taken", bad)
		}
	}
}
