package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// backupIdleTimeout is how long the backup stream may stand still before
// the connection is dropped. The server's WriteTimeout covers a whole
// response, which a backup of gigabytes outlasts; the deadline moves on
// with every write instead, so a stalled client cannot hold the
// connection and the database's temporary copy for ever.
const backupIdleTimeout = 60 * time.Second

// backupPrepareTimeout bounds the time before the first byte: the store
// copies the database to a local file first, which for a big store outlasts
// the server's write timeout (and an expired deadline cannot be moved on).
const backupPrepareTimeout = 15 * time.Minute

// handleBackup streams a hot backup of the whole store as a tar (see
// store.Backup); root administrators only. An error before the first byte
// answers in the protocol's envelope; after it, the connection is cut, so
// the client sees a broken transfer and a tar without its trailer, never a
// short archive that looks whole.
func (s *Server) handleBackup(c echo.Context) error {
	p := principal(c)
	start := time.Now()
	res := c.Response()
	w := &backupWriter{
		res:      res,
		deadline: http.NewResponseController(res),
		name:     fmt.Sprintf("fieldsync-%s.tar", start.UTC().Format("20060102T150405Z")),
	}
	if err := w.extend(start.Add(backupPrepareTimeout)); err != nil {
		return err
	}
	info, err := s.app.Backup(c.Request().Context(), p, w)
	attrs := []any{
		"request_id", res.Header().Get(echo.HeaderXRequestID),
		"user", p.Actor.UserID, "device", p.Actor.DeviceID,
		"bytes", res.Size, "ms", time.Since(start).Milliseconds(),
	}
	if err != nil {
		if !res.Committed {
			return err
		}
		s.log.Error("backup failed mid-stream; connection aborted", append(attrs, "err", err)...)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup taken", append(attrs,
		"last_seq", info.LastSeq, "warnings", info.Warnings, "photos", info.Blobs, "db_bytes", info.DBBytes)...)
	return nil
}

// backupWriter sends the headers with the first byte, so an error before
// it can still answer in the envelope, and moves the connection's write
// deadline on as the stream advances.
type backupWriter struct {
	res      *echo.Response
	deadline *http.ResponseController
	name     string
	moved    time.Time
}

func (w *backupWriter) Write(p []byte) (int, error) {
	if !w.res.Committed {
		h := w.res.Header()
		h.Set(echo.HeaderContentType, "application/x-tar")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", w.name))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.res.WriteHeader(http.StatusOK)
	}
	if now := time.Now(); now.Sub(w.moved) > time.Second {
		w.moved = now
		if err := w.extend(now.Add(backupIdleTimeout)); err != nil {
			return 0, err
		}
	}
	return w.res.Write(p)
}

// extend moves the write deadline. (The read timeout needs nothing: once
// a request's body is read, net/http stops applying it.)
func (w *backupWriter) extend(t time.Time) error {
	if err := w.deadline.SetWriteDeadline(t); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("extend the connection's write deadline: %w", err)
	}
	return nil
}
