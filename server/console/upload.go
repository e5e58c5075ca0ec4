package console

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// feedPartsKey holds the upload's multipart reader, past its csrf part.
const feedPartsKey = "console-feed-parts"

func (c *Console) feedPage(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	return c.render(ctx, http.StatusOK, "feed", map[string]any{"User": sess.user, "CSRF": sess.csrf})
}

// showFeed renders the feed page with data: a result or an error.
func (c *Console) showFeed(ctx echo.Context, status int, data map[string]any) error {
	sess := ctx.Get(sessionKey).(*session)
	data["User"], data["CSRF"] = sess.user, sess.csrf
	return c.render(ctx, status, "feed", data)
}

// feedTooLarge is the feed page saying the file is over the limit.
func (c *Console) feedTooLarge(ctx echo.Context) error {
	return c.showFeed(ctx, http.StatusRequestEntityTooLarge, map[string]any{
		"Error": "文件太大（上限 " + sizeText(c.feedLimit) + "），请拆分后分批上传。"})
}

// feedForm admits a feed upload, the one form that carries a file, before
// any of the file is read: the user must be allowed to import (by the
// session's role: a role changed since sign-in counts from the next token
// refresh, and ImportFeed checks the current one), the body must fit the
// feed limit, and its first part must be the session's CSRF token. The
// file itself is read by uploadFeed as a stream, so none of it reaches the
// disk.
func (c *Console) feedForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		sess := ctx.Get(sessionKey).(*session)
		if app.CanImportFeed(app.Principal{Actor: syncproto.Actor{Role: sess.user.Role}, Admin: sess.user.Admin}) != nil {
			return c.showFeed(ctx, http.StatusForbidden, map[string]any{"Error": "只有市反诈中心可以导入预警。"})
		}
		r := ctx.Request()
		// The file and, around it, the form's other fields and boundaries.
		limit := c.feedLimit + c.formLimit
		if r.ContentLength > limit {
			return c.feedTooLarge(ctx)
		}
		r.Body = http.MaxBytesReader(ctx.Response().Writer, r.Body, limit)
		mr, err := r.MultipartReader()
		if err != nil {
			return syncproto.InvalidField("Content-Type", "导入预警的表单以 multipart/form-data 提交。")
		}
		token, err := readCSRFPart(mr, limit)
		if err != nil {
			return err
		}
		if !sess.checkCSRF(token) {
			return csrfRefused()
		}
		ctx.Set(feedPartsKey, mr)
		return next(ctx)
	}
}

// errNoFile: the form ended without a file part.
var errNoFile = errors.New("no file in the form")

// readFeedFile reads the form's file part whole, at most the feed limit,
// skipping any other fields before it.
func (c *Console) readFeedFile(mr *multipart.Reader) (name string, data []byte, err error) {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil, errNoFile
		}
		if err != nil {
			return "", nil, err
		}
		if part.FormName() != "file" {
			_, err := io.Copy(io.Discard, part)
			part.Close()
			if err != nil {
				return "", nil, err
			}
			continue
		}
		defer part.Close()
		data, err := io.ReadAll(io.LimitReader(part, c.feedLimit+1))
		if err != nil {
			return "", nil, err
		}
		if int64(len(data)) > c.feedLimit {
			return "", nil, &http.MaxBytesError{Limit: c.feedLimit}
		}
		return part.FileName(), data, nil
	}
}

// uploadFeed imports a CSV or JSON feed file and shows each row's result.
func (c *Console) uploadFeed(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	name, data, err := c.readFeedFile(ctx.Get(feedPartsKey).(*multipart.Reader))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return c.feedTooLarge(ctx)
	case err != nil || name == "":
		return c.showFeed(ctx, http.StatusBadRequest, map[string]any{"Error": "请选择要上传的预警文件（CSV 或 JSON）。"})
	}
	rows, msg := c.parseFeedFile(name, data)
	if msg != "" {
		return c.showFeed(ctx, http.StatusBadRequest, map[string]any{"Error": msg})
	}
	resp, err := c.app.ImportFeed(ctx.Request().Context(), p, rows)
	if err != nil {
		if e := syncproto.AsError(err); e != nil && e.Code == syncproto.CodeForbidden {
			return c.showFeed(ctx, http.StatusForbidden, map[string]any{"Error": "只有市反诈中心可以导入预警。"})
		}
		return err
	}
	return c.showFeed(ctx, http.StatusOK, map[string]any{"Result": resp, "File": name})
}

// parseFeedFile reads a feed file as JSON (by its name) or CSV; msg says
// what is wrong with a file that cannot be read at all.
func (c *Console) parseFeedFile(name string, data []byte) (rows []store.FeedRow, msg string) {
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		var req syncproto.FeedRequest
		if err := syncproto.Decode(syncproto.JSON, bytes.NewReader(data), c.feedLimit, &req); err != nil {
			if e := syncproto.AsError(err); e != nil {
				return nil, "JSON 文件格式有误：" + e.Message
			}
			return nil, "JSON 文件无法读取。"
		}
		for i, w := range req.Warnings {
			rows = append(rows, store.FeedRow{Num: i + 1, Warning: w})
		}
		return rows, ""
	}
	parsed, err := feed.ParseCSV(bytes.NewReader(data), c.now())
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return nil, "CSV 文件有误：" + e.Message
		}
		return nil, "CSV 文件无法读取。"
	}
	for _, r := range parsed {
		rows = append(rows, store.FeedRow{Num: r.Num, Warning: r.Warning, Err: r.Err})
	}
	return rows, ""
}
