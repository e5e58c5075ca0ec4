package httpapi

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/httpapi/query"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

func (s *Server) handleHealth(c echo.Context) error {
	return respond(c, http.StatusOK, syncproto.Health{Status: "ok"})
}

func (s *Server) handleLogin(c echo.Context) error {
	var req syncproto.LoginRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp, err := s.app.Login(c.Request().Context(), &req)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleRefresh(c echo.Context) error {
	var req syncproto.RefreshRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp, err := s.app.Refresh(c.Request().Context(), &req)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleLogout(c echo.Context) error {
	if err := s.app.Logout(c.Request().Context(), principal(c)); err != nil {
		return err
	}
	return respond(c, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) handlePush(c echo.Context) error {
	var req syncproto.PushRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp, err := s.app.Push(c.Request().Context(), principal(c), &req)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handlePull(c echo.Context) error {
	var req syncproto.PullRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	wait := time.Duration(req.Wait) * time.Second
	ctx := c.Request().Context()
	// A pull without wait builds its page in a slot (pages.go); a held
	// pull waits without one and takes one only to encode a page that
	// has something in it. Either gives it back before the bytes go out:
	// a client slow to read holds no slot.
	slotted := false
	release := func() {
		if slotted {
			slotted = false
			s.pages.give()
		}
	}
	defer release()
	if wait <= 0 {
		if err := s.pages.take(ctx); err != nil {
			return err
		}
		slotted = true
	} else {
		// A held pull would outlast the write timeout, which runs from
		// the request's start (and ends an HTTP/2 stream when it fires):
		// move it past the wait.
		if err := s.extendWrite(c, time.Now().Add(wait)); err != nil {
			return err
		}
	}
	resp, err := s.app.Pull(ctx, principal(c), &req)
	if err != nil {
		return err
	}
	if wait > 0 {
		// The answer gets the whole write timeout, however long it waited.
		if err := s.extendWrite(c, time.Now()); err != nil {
			return err
		}
		if len(resp.Changes) > 0 {
			if err := s.pages.take(ctx); err != nil {
				return err
			}
			slotted = true
		}
	}
	level := gzip.BestSpeed
	if req.MaxBytes > 0 && req.MaxBytes <= slowLinkBudget {
		level = gzip.DefaultCompression
	}
	answer, err := encodeAt(c, resp, level)
	release()
	if err != nil {
		return err
	}
	return answer.send(c, http.StatusOK)
}

// extendWrite sets the connection's write deadline to the write timeout
// after from. A writer without deadlines (a test recorder) needs none.
func (s *Server) extendWrite(c echo.Context, from time.Time) error {
	err := http.NewResponseController(c.Response()).SetWriteDeadline(from.Add(s.cfg.Listen.WriteTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("extend the connection's write deadline: %w", err)
	}
	return nil
}

func (s *Server) handleFeed(c echo.Context) error {
	// Refused before the body is read: a feed file is up to CSVLimit.
	if err := app.CanImportFeed(principal(c)); err != nil {
		return err
	}
	var rows []store.FeedRow
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt == syncproto.MediaCSV {
		r, done, err := body(c)
		if err != nil {
			return err
		}
		defer done()
		// The limit counts the file's bytes after gunzip. Past it the read
		// fails, so a file that is too big is refused whole, not cut, and
		// the connection closes after the answer instead of reading on.
		limited := http.MaxBytesReader(c.Response().Writer, io.NopCloser(r), s.cfg.CSVLimit)
		parsed, err := feed.ParseCSV(limited, s.app.Now())
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return syncproto.Errorf(syncproto.CodePayloadTooLarge, "the feed file is too large; split it")
		}
		if err != nil {
			return err
		}
		rows = make([]store.FeedRow, len(parsed))
		for i, p := range parsed {
			rows[i] = store.FeedRow{Num: p.Num, Warning: p.Warning, Err: p.Err, Problems: p.Problems}
		}
	} else {
		var req syncproto.FeedRequest
		if err := s.decode(c, &req); err != nil {
			return err
		}
		rows = make([]store.FeedRow, len(req.Warnings))
		now := s.app.Now()
		for i, w := range req.Warnings {
			rows[i] = store.FeedRow{Num: i + 1, Warning: w}
			rows[i].Err, rows[i].Problems = feed.Check(&w, now)
		}
	}
	resp, err := s.app.ImportFeed(c.Request().Context(), principal(c), rows)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleUnits(c echo.Context) error {
	var req syncproto.UnitsRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp, err := s.app.UpsertUnits(c.Request().Context(), principal(c), &req)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleUsers(c echo.Context) error {
	var req syncproto.UsersRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp, err := s.app.UpsertUsers(c.Request().Context(), principal(c), &req)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleRevoke(c echo.Context) error {
	var req syncproto.RevokeRequest
	if c.Request().ContentLength != 0 {
		if err := s.decode(c, &req); err != nil {
			return err
		}
	}
	resp, err := s.app.RevokeDevice(c.Request().Context(), principal(c), c.Param("id"), req.Wipe)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handlePutBlob(c echo.Context) error {
	sum := c.Param("sha256")
	if !syncproto.ValidSHA256(sum) {
		return syncproto.InvalidField("sha256", "the path must end in the photo's lowercase hex SHA-256")
	}
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if !syncproto.ValidPhotoType(mt) {
		return syncproto.InvalidField("Content-Type", "a photo must be image/jpeg or image/png")
	}
	if c.Request().ContentLength > syncproto.MaxBlobBytes {
		return syncproto.Errorf(syncproto.CodePayloadTooLarge, "a photo may be at most %d bytes", syncproto.MaxBlobBytes)
	}
	// Refused before the body is read when the device's quota for the day
	// has no room for it; storing the photo checks again.
	if err := s.app.CheckPhotoRoom(principal(c), max(c.Request().ContentLength, 1)); err != nil {
		return err
	}
	r, done, err := body(c)
	if err != nil {
		return err
	}
	defer done()
	meta, err := s.app.PutPhoto(c.Request().Context(), principal(c), sum, mt, r)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, syncproto.BlobResponse{SHA256: meta.SHA256, Size: meta.Size})
}

// handleUpload hands a tus request to the service, which answers it itself
// unless it refuses it: then the error is written here like any other.
func (s *Server) handleUpload(c echo.Context) error {
	return s.app.ServeUpload(c.Response(), c.Request(), principal(c))
}

func (s *Server) handleGetBlob(c echo.Context) error {
	sum := c.Param("sha256")
	if !syncproto.ValidSHA256(sum) {
		return syncproto.InvalidField("sha256", "the path must end in a lowercase hex SHA-256")
	}
	meta, f, err := s.app.OpenPhoto(c.Request().Context(), principal(c), sum)
	if err != nil {
		return err
	}
	defer f.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentLength, strconv.FormatInt(meta.Size, 10))
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	return c.Stream(http.StatusOK, meta.ContentType, f)
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(c echo.Context, name string) (int, error) {
	return query.Count(name, c.QueryParam(name))
}

func (s *Server) handleWarning(c echo.Context) error {
	d, err := s.app.WarningDetail(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, d)
}

func (s *Server) handleList(c echo.Context) error {
	q, err := query.ReadList(c.QueryParam).Parse()
	if err != nil {
		return err
	}
	resp, err := s.app.List(c.Request().Context(), principal(c), q)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleStats(c echo.Context) error {
	q, err := query.Stats(c.QueryParam("unit"), c.QueryParam("from"), c.QueryParam("to"))
	if err != nil {
		return err
	}
	resp, err := s.app.Stats(principal(c), q)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, resp)
}

func (s *Server) handleAudit(c echo.Context) error {
	after, err := queryInt(c, "after")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	page, err := s.app.Audit(principal(c), uint64(after), limit)
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, page)
}

// handleFeedback answers GET /v1/feedback?cursor=&limit= in JSON or
// MessagePack, or as CSV for Accept: text/csv or format=csv.
func (s *Server) handleFeedback(c echo.Context) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	resp, err := s.app.Feedback(principal(c), c.QueryParam("cursor"), limit)
	if err != nil {
		return err
	}
	if c.QueryParam("format") == "csv" || strings.HasPrefix(c.Request().Header.Get(echo.HeaderAccept), syncproto.MediaCSV) {
		var buf bytes.Buffer
		if err := feed.WriteFeedbackCSV(&buf, resp.Items); err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set("Fieldsync-Cursor", resp.Cursor)
		h.Set("Fieldsync-More", strconv.FormatBool(resp.More))
		return c.Blob(http.StatusOK, syncproto.MediaCSV+"; charset=utf-8", buf.Bytes())
	}
	return respond(c, http.StatusOK, resp)
}
