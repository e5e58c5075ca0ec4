package app

import (
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// countAuthFailure counts err when it refuses the caller's credentials,
// token or device; unauthorized gets the reason the caller knows it means
// there. Errors of other kinds (bad input, an unavailable store) are not
// authentication failures and are not counted.
func (a *App) countAuthFailure(err error, unauthorized string) {
	if err == nil || a.cfg.Metrics == nil {
		return
	}
	if err == error(store.ErrRefreshReused) {
		a.cfg.Metrics.AuthFailure(metrics.AuthRefreshReused)
		return
	}
	switch syncproto.ErrorCode(err) {
	case syncproto.CodeUnauthorized:
		a.cfg.Metrics.AuthFailure(unauthorized)
	case syncproto.CodeTokenExpired:
		a.cfg.Metrics.AuthFailure(metrics.AuthTokenExpired)
	case syncproto.CodeDeviceRevoked:
		a.cfg.Metrics.AuthFailure(metrics.AuthDeviceRevoked)
	case syncproto.CodeForbidden:
		a.cfg.Metrics.AuthFailure(metrics.AuthForbiddenDevice)
	}
}
