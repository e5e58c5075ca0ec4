package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Config tunes the HTTP server.
type Config struct {
	// BodyLimit caps a request body after decompression (1 MiB by default).
	BodyLimit int64
	// CSVLimit caps a CSV feed file (feed.DefaultLimit, 16 MiB, by
	// default): a day's feed of a big city is larger than a protocol body,
	// and CSV is read as a stream.
	CSVLimit int64
	// Logger receives one line per request, without personal data.
	Logger *slog.Logger
	// Mount adds other faces to the same server, such as the web console;
	// they share its logging, request ids and error handling.
	Mount []func(e *echo.Echo)
	// Listen tunes how Open listens: TLS, timeouts, connection cap.
	Listen ListenConfig
	// Metrics counts requests and serves GET /metrics; nil leaves both out.
	Metrics *metrics.Metrics
	// MetricsToken, when set, is the bearer token GET /metrics asks for.
	// When empty /metrics is open to whoever reaches the port: firewall it.
	MetricsToken string
	// RateLimit limits requests per device and per client address.
	RateLimit RateLimit
	// BasePath, such as "/4110", serves everything under it (a province's
	// proxy routes by it); "" serves at the root. It must be clean
	// (CleanBasePath).
	BasePath string
	// Cluster, on a node of a cluster, is its state for readyz, which
	// answers 503 while the node has no quorum; nil on one server.
	Cluster func() syncproto.ClusterHealth
}

// Server is the HTTP face of an app.App.
type Server struct {
	app  *app.App
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo
	http *http.Server
	ln   net.Listener
	done chan error
	// cert is the served TLS certificate, nil for plain HTTP.
	cert *certificate
	// draining is set when Close begins: readyz answers 503 from then on.
	draining atomic.Bool

	// limits are the request limits per device and per client address.
	limits *limits
	// pages bound the pull pages built at once.
	pages pageSlots
}

// New builds the server and its routes.
func New(a *app.App, cfg Config) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = syncproto.MaxBodyBytes
	}
	if cfg.CSVLimit <= 0 {
		cfg.CSVLimit = feed.DefaultLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Listen.setDefaults()
	s := &Server{app: a, cfg: cfg, log: cfg.Logger, limits: newLimits(cfg.RateLimit), pages: newPageSlots()}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(cfg.RateLimit.TrustedProxies)
	if cfg.BasePath != "" {
		e.Pre(underBase(cfg.BasePath))
	}
	e.Use(recoverPanic(), requestID(), s.measure, s.logRequests, s.protocolHeader, s.clientAddress)
	s.mountMetrics(e)

	v1 := e.Group("/v1")
	v1.GET("/healthz", s.handleHealth)
	v1.GET("/readyz", s.handleReady)
	v1.POST("/auth/login", s.handleLogin, s.limitIP)
	v1.POST("/auth/refresh", s.handleRefresh, s.limitIP)

	// Push and pull check the device and user inside their own store
	// transaction; the other endpoints check them before they run.
	syncing := v1.Group("", s.authenticateToken, s.limitDevice)
	syncing.POST("/sync/push", s.handlePush)
	syncing.POST("/sync/pull", s.handlePull)

	authed := v1.Group("", s.authenticate, s.limitDevice)
	authed.POST("/auth/logout", s.handleLogout)
	authed.POST("/feed/warnings", s.handleFeed)
	authed.GET("/feedback", s.handleFeedback)
	authed.GET("/warnings", s.handleList)
	authed.GET("/warnings/:id", s.handleWarning)
	authed.GET("/stats", s.handleStats)
	authed.GET("/admin/audit", s.handleAudit)
	authed.GET("/admin/backup", s.handleBackup)
	authed.POST("/admin/units", s.handleUnits)
	authed.POST("/admin/users", s.handleUsers)
	authed.POST("/admin/devices/:id/revoke", s.handleRevoke)
	authed.POST("/admin/keys/rotate", s.handleRotateKey)
	authed.PUT("/blobs/:sha256", s.handlePutBlob)
	authed.GET("/blobs/:sha256", s.handleGetBlob)
	// Resumable photo uploads (tus 1.0): created at /uploads/, then
	// /uploads/<device>/<id>.
	authed.POST("/uploads", s.handleUpload)
	authed.Match([]string{http.MethodPost, http.MethodHead, http.MethodPatch, http.MethodDelete}, "/uploads/*", s.handleUpload)
	for _, mount := range cfg.Mount {
		mount(e)
	}
	s.echo = e
	return s
}

// Handler is the server's http.Handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Open listens on addr ("127.0.0.1:0" picks a port) and serves in the
// background, over TLS when Config.Listen names a certificate.
func (s *Server) Open(addr string) error {
	lc := s.cfg.Listen
	if lc.TLS() {
		cert, err := loadCertificate(lc.CertFile, lc.KeyFile)
		if err != nil {
			return err
		}
		s.cert = cert
	}
	ln, err := lc.listen(addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: lc.ReadHeaderTimeout,
		ReadTimeout:       lc.ReadTimeout,
		WriteTimeout:      lc.WriteTimeout,
		IdleTimeout:       lc.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		s.http.TLSConfig = s.cert.tlsConfig()
	}
	s.done = make(chan error, 1)
	go func() {
		var err error
		if s.cert != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			err = s.http.ServeTLS(ln, "", "")
		} else {
			err = s.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// URL is the server's base URL.
func (s *Server) URL() string {
	if s.cert != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting, lets requests in flight finish (up to ctx), and
// returns. Pushes already queued in the store still commit.
func (s *Server) Close(ctx context.Context) error {
	s.Drain()
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}

// handleError writes every error as the protocol's envelope.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	perr := syncproto.AsError(err)
	if perr == nil {
		var he *echo.HTTPError
		switch {
		case errors.As(err, &he):
			perr = &syncproto.Error{Code: syncproto.CodeForStatus(he.Code), Message: httpMessage(he)}
		case errors.Is(err, context.Canceled):
			perr = syncproto.Errorf(syncproto.CodeUnavailable, "the request was cancelled")
		default:
			// The cause stays in the log; the client learns only that it
			// may retry. Nothing was half applied: the store commits whole.
			s.log.Error("request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "route", c.Path(), "err", err)
			perr = syncproto.Errorf(syncproto.CodeUnavailable, "the server could not complete the request; retry shortly")
		}
	}
	status := perr.Status()
	// A 429, or a 503 that says when to come back (a node of a cluster
	// catching up), carries Retry-After.
	if (status == http.StatusTooManyRequests || perr.Details["retry_after"] != nil) && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", retryAfter(perr))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := respond(c, status, syncproto.ErrorEnvelope{Error: perr}); werr != nil {
		s.log.Error("write error response", "err", werr)
	}
}

func httpMessage(he *echo.HTTPError) string {
	switch he.Code {
	case http.StatusNotFound:
		return "no such endpoint"
	case http.StatusMethodNotAllowed:
		return "this endpoint does not take that method"
	case http.StatusRequestEntityTooLarge:
		return "the body is too large"
	}
	if m, ok := he.Message.(string); ok {
		return m
	}
	return http.StatusText(he.Code)
}

// recoverPanic turns a handler's panic into an error returned like any
// other, so handleError logs it (with the request's id and route) and
// answers unavailable in the protocol's format. The stack is not printed;
// http.ErrAbortHandler is panicked on, as net/http expects.
func recoverPanic() echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisablePrintStack:   true,
		DisableErrorHandler: true,
		LogErrorFunc: func(_ echo.Context, err error, _ []byte) error {
			// %v, not %w: whatever the panic carried, even a protocol
			// error, is the server's fault and never the client's answer.
			return fmt.Errorf("panic: %v", err)
		},
	})
}

// maxRequestID is the longest X-Request-ID taken from a client; a longer
// one is replaced, so a log line stays a line.
const maxRequestID = 64

// requestID gives every request an id, in X-Request-ID of the answer and
// in its log line: the client's own when it sent one of at most
// maxRequestID bytes, else a new one.
func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		Generator: newRequestID,
		RequestIDHandler: func(c echo.Context, id string) {
			if len(id) > maxRequestID {
				c.Response().Header().Set(echo.HeaderXRequestID, newRequestID())
			}
		},
	})
}

// newRequestID is 8 random bytes in hex.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logRequests writes one line per request: route pattern (never the raw
// path or query, which could carry personal data), status, time, sizes.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		attrs := []any{
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method,
			"route", c.Path(),
			"status", c.Response().Status,
			"ms", float64(time.Since(start).Microseconds()) / 1000,
			"bytes_in", c.Request().ContentLength,
			"bytes_out", c.Response().Size,
		}
		if p, ok := c.Get(principalKey).(app.Principal); ok {
			attrs = append(attrs, "user", p.Actor.UserID, "device", p.Actor.DeviceID)
		}
		s.log.Info("request", attrs...)
		return nil
	}
}

func (s *Server) protocolHeader(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(syncproto.HeaderProtocol, syncproto.ProtocolVersion)
		if v := c.Request().Header.Get(syncproto.HeaderProtocol); v != "" {
			major, _, _ := strings.Cut(strings.TrimSpace(v), ".")
			if major != syncproto.ProtocolVersion {
				return syncproto.Errorf(syncproto.CodeUnsupportedProtocol, "this server speaks protocol %s, not %s", syncproto.ProtocolVersion, v)
			}
		}
		return next(c)
	}
}

const principalKey = "principal"

// maxAuthorization is the longest Authorization header read: the token
// limit and the scheme.
const maxAuthorization = 4096 + len("Bearer ")

// authenticate checks the bearer token, then the device and user it names.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return s.bearer(next, s.app.Authenticate)
}

// authenticateToken checks only the bearer token: for endpoints whose store
// call checks the device and user itself, in the same transaction.
func (s *Server) authenticateToken(next echo.HandlerFunc) echo.HandlerFunc {
	return s.bearer(next, s.app.VerifyToken)
}

func (s *Server) bearer(next echo.HandlerFunc, check func(token string) (app.Principal, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		// A token is a few hundred bytes; an oversized header is refused as
		// it is, padding and all, before anything parses it.
		if len(h) > maxAuthorization {
			s.cfg.Metrics.AuthFailure(metrics.AuthBadToken)
			return syncproto.Errorf(syncproto.CodeUnauthorized, "the Authorization header is too long to hold an access token")
		}
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			s.cfg.Metrics.AuthFailure(metrics.AuthNoToken)
			return syncproto.Errorf(syncproto.CodeUnauthorized, "send an access token as Authorization: Bearer <token>")
		}
		p, err := check(strings.TrimSpace(token))
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principal(c echo.Context) app.Principal {
	p, _ := c.Get(principalKey).(app.Principal)
	return p
}
