package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadServeConfig(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		printServeHelp(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if ownProcess {
		applyMemoryLimit(cfg.MemoryLimit, logger)
		applyGCPercent(cfg.GCPercent, logger)
	}
	// The metrics exist before the store so that it reports its commits.
	m := metrics.New(metrics.Options{})
	sopts := store.Options{Deadlines: cfg.Deadlines, OnCommit: m.ObserveCommit, MaxPullWaiters: maxPullWaiters(cfg.Listen.MaxConns),
		MaxDevicesPerUser: cfg.MaxDevicesPerUser, DeviceExpiry: cfg.DeviceExpiry, WarningLimits: cfg.WarningLimits, PhotoQuota: cfg.PhotoQuota}
	var node *cluster.Node
	if cfg.clustered() {
		if node, err = startNode(ctx, cfg, &sopts, logger, stderr); err != nil {
			return err
		}
		// Raft stops before the store closes (deferred below, so run
		// after this).
		defer node.Close()
	}
	st, err := store.Open(cfg.Data, sopts)
	if err != nil {
		return err
	}
	defer st.Close()
	logMigrations(logger, st)
	var health func() syncproto.ClusterHealth
	var leads func() bool
	var catchUp func(context.Context) error
	if node != nil {
		node.SetInit(clusterInit(st))
		if err := joinCluster(ctx, node, st, cfg.Peers, logger); err != nil {
			return err
		}
		health, leads, catchUp = node.Health, node.Leads, node.CatchUp
		m.WatchCluster(node)
	}
	return serve(ctx, st, serveParams{
		Addr: cfg.Addr,
		App: app.Config{
			AccessTTL: cfg.AccessTTL, RefreshGrace: cfg.RefreshGrace, CadreRetention: cfg.CadreRetention, RedactAfter: cfg.RedactAfter, Lockout: cfg.Lockout,
			TombstoneHorizon: cfg.TombstoneHorizon, UploadExpiry: cfg.UploadExpiry, MaxUploadsPerDevice: cfg.MaxUploadsPerDevice,
			OrphanPhotoGrace: cfg.OrphanPhotoGrace, ConsoleIdle: cfg.ConsoleIdle, ConsoleLifetime: cfg.ConsoleLifetime,
			NodeID: cfg.NodeID, Leads: leads, CatchUp: catchUp,
		},
		HTTP: httpapi.Config{BodyLimit: cfg.BodyLimit, Logger: logger, Listen: cfg.Listen, Metrics: m, MetricsToken: cfg.MetricsToken, RateLimit: cfg.RateLimit, BasePath: cfg.BasePath, Cluster: health},

		Console:         console.Config{FormLimit: cfg.ConsoleFormLimit, FeedLimit: cfg.FeedLimit, BasePath: cfg.BasePath},
		DrainDelay:      cfg.DrainDelay,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, stdout)
}

// maxPullWaiters is how many pulls may be held waiting for a change: with a
// connection cap, half of it, so held pulls never take the connections
// that pushes and other pulls need; without one, the store's default.
func maxPullWaiters(maxConns int) int {
	if maxConns <= 0 {
		return 0
	}
	return max(1, maxConns/2)
}

// serveParams is what serve runs with; zero values take the defaults.
type serveParams struct {
	Addr string
	App  app.Config
	HTTP httpapi.Config
	// Console tunes the web console; its FeedLimit is the API's CSVLimit
	// too, so a feed file has one limit however it comes.
	Console console.Config
	// DrainDelay is how long readyz answers 503 before the server stops
	// taking connections; ShutdownTimeout how long requests in flight then
	// have to finish (15 s when 0).
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	// Ready, if set, runs once the address is printed.
	Ready func(url string)
}

// serve runs the HTTP server on st until ctx ends, then drains. SIGHUP
// reloads the TLS certificate.
func serve(ctx context.Context, st *store.Store, p serveParams, stdout io.Writer) error {
	log := p.HTTP.Logger
	if log == nil {
		log = slog.Default()
	}
	if p.HTTP.Metrics == nil {
		// Without a store hook of its own: commits go uncounted.
		p.HTTP.Metrics = metrics.New(metrics.Options{})
	}
	p.HTTP.Metrics.WatchStore(st)
	warnOpenMetrics(log, p.Addr, p.HTTP.MetricsToken)
	p.App.Metrics = p.HTTP.Metrics
	a, err := app.New(ctx, st, p.App, log)
	if err != nil {
		return err
	}
	con, err := console.New(a, p.Console)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	p.HTTP.CSVLimit = p.Console.FeedLimit
	p.HTTP.Mount = append(p.HTTP.Mount, con.Register)
	srv := httpapi.New(a, p.HTTP)
	if err := srv.Open(p.Addr); err != nil {
		return err
	}
	stopReloading := reloadOnHangup(srv, log)
	defer stopReloading()
	sweeping, stopSweeping := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		a.RunRetention(sweeping, time.Hour)
	}()
	upkept := make(chan struct{})
	go func() {
		defer close(upkept)
		a.RunUpkeep(sweeping)
	}()
	defer func() {
		stopSweeping()
		<-swept
		<-upkept
	}()
	url := srv.URL() + p.HTTP.BasePath
	fmt.Fprintf(stdout, "listening on %s\n", url)
	if p.Ready != nil {
		p.Ready(url)
	}
	<-ctx.Done()
	srv.Drain()
	if p.DrainDelay > 0 {
		log.Info("draining: readyz answers 503 until the server stops", "delay", p.DrainDelay.String())
		time.Sleep(p.DrainDelay)
	}
	if p.ShutdownTimeout <= 0 {
		p.ShutdownTimeout = 15 * time.Second
	}
	shutdown, cancel := context.WithTimeout(context.Background(), p.ShutdownTimeout)
	defer cancel()
	if err := srv.Close(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// warnOpenMetrics logs at start that GET /metrics answers other machines
// without a token: the configuration asked for it (checkMetricsExposure),
// and the log says so every time, so that it is not kept by accident.
func warnOpenMetrics(log *slog.Logger, addr, token string) {
	if token != "" || isLoopback(addr) {
		return
	}
	log.Warn("GET /metrics is served without a token to anyone who reaches this address; give --metrics-token-file or firewall the port",
		"addr", addr, "setting", "--metrics-open")
}

// reloadOnHangup reloads the server's TLS certificate on each SIGHUP until
// the returned function is called. A failed reload keeps the old certificate
// and logs why; the log names the files, never their contents. Without TLS
// a SIGHUP is logged and ignored rather than ending the process.
func reloadOnHangup(srv *httpapi.Server, log *slog.Logger) (stop func()) {
	hup, unregister := hangups, func() {}
	if hup == nil {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		hup, unregister = c, func() { signal.Stop(c) }
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if srv.Certificate() == nil {
				log.Info("SIGHUP: no TLS certificate to reload")
				continue
			}
			if err := srv.ReloadCertificate(); err != nil {
				log.Error("TLS certificate reload failed; the old certificate stays in use", "err", err)
				continue
			}
			attrs := []any{}
			if leaf := srv.Certificate().Leaf; leaf != nil {
				attrs = append(attrs, "subject", leaf.Subject.CommonName, "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
			}
			log.Info("TLS certificate reloaded", attrs...)
		}
	}()
	return func() {
		unregister()
		close(done)
		<-finished
	}
}

// hangups, when set, receives the process's SIGHUPs from its first moment
// (main registers it), so a SIGHUP while the store opens or migrates does
// not end the process; reloadOnHangup reads it once the server runs. Tests
// leave it nil and reloadOnHangup registers its own.
var hangups <-chan os.Signal

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := logLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit to limit,
// unless limit is 0 or GOMEMLIMIT is set in the environment: an
// operator's GOMEMLIMIT (a systemd unit's, a container's) wins over the
// default. It logs the limit in effect.
func applyMemoryLimit(limit int64, log *slog.Logger) {
	if env, set := os.LookupEnv("GOMEMLIMIT"); set {
		log.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", env, "bytes", debug.SetMemoryLimit(-1))
		return
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	log.Info("memory limit", "bytes", debug.SetMemoryLimit(-1))
}

// applyGCPercent sets the Go runtime's GC percent to percent unless GOGC
// is set in the environment, which wins as GOMEMLIMIT does. It logs the
// percent in effect.
func applyGCPercent(percent int, log *slog.Logger) {
	if env, set := os.LookupEnv("GOGC"); set {
		log.Info("gc percent from GOGC", "GOGC", env)
		return
	}
	debug.SetGCPercent(percent)
	log.Info("gc percent", "percent", percent)
}
