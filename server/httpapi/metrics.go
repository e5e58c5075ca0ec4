package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/syncproto"
)

// measure counts every request by its route pattern (c.Path(), never the
// raw path, which can carry ids), method and status, with its time. It
// runs outside logRequests, which has turned any error into the response
// by then, so the status is the one the client got.
func (s *Server) measure(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.Metrics == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.cfg.Metrics.ObserveRequest(c.Path(), c.Request().Method, c.Response().Status, time.Since(start))
		return nil
	}
}

// mountMetrics serves GET /metrics in Prometheus's text format, behind
// the bearer token of Config.MetricsToken when there is one.
func (s *Server) mountMetrics(e *echo.Echo) {
	if s.cfg.Metrics == nil {
		return
	}
	e.GET("/metrics", echo.WrapHandler(s.cfg.Metrics.Handler()), s.metricsAccess)
}

// metricsAccess lets a scrape through with the right bearer token, or with
// none when no token is configured. Both sides are hashed before the
// constant-time comparison, so neither content nor length leaks by timing.
func (s *Server) metricsAccess(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.MetricsToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.MetricsToken))
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		token, bearer := strings.CutPrefix(h, "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !bearer || len(h) > maxAuthorization || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.cfg.Metrics.AuthFailure(metrics.AuthMetricsToken)
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="metrics"`)
			return syncproto.Errorf(syncproto.CodeUnauthorized, "/metrics needs the bearer token of --metrics-token-file")
		}
		return next(c)
	}
}
