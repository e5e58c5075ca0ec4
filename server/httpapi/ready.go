package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// handleReady is the readiness probe: 200 while the server takes work,
// 503 once it drains or when its store cannot be read. /v1/healthz stays
// the liveness probe, which answers as long as the process serves HTTP.
func (s *Server) handleReady(c echo.Context) error {
	if s.draining.Load() {
		return syncproto.Errorf(syncproto.CodeUnavailable, "the server is shutting down; use another or retry shortly")
	}
	if err := s.app.Ready(); err != nil {
		// The cause (a file error) stays in the log.
		s.log.Warn("readiness check failed", "err", err)
		return syncproto.Errorf(syncproto.CodeUnavailable, "the server cannot read its store; retry shortly")
	}
	if s.cfg.Cluster != nil {
		// A load balancer sends work only to nodes that can save it; a
		// node without a quorum still serves pulls to those that come.
		ch := s.cfg.Cluster()
		if !ch.Quorum {
			return syncproto.Errorf(syncproto.CodeUnavailable, "this node cannot reach a majority of its cluster").
				With("reason", "no_quorum").With("retry_after", 1).With("cluster", ch)
		}
		return respond(c, http.StatusOK, syncproto.Health{Status: "ready", Cluster: &ch})
	}
	return respond(c, http.StatusOK, syncproto.Health{Status: "ready"})
}

// Drain makes readyz answer 503 while the server still serves, so a load
// balancer stops sending work before Close, and answers the pulls held
// waiting for a change at once (App.Drain): a phone polls again, on
// another server or this one when it is back. Close drains too.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.app.Drain()
}
