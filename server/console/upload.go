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

// errNoImport refuses the feed to a user who may not import it.
func errNoImport() *syncproto.Error {
	return syncproto.Errorf(syncproto.CodeForbidden, "只有市反诈中心可以导入预警。")
}

// feedPage is the upload form, for the users who may import; the others
// do not see it in the navigation either.
func (c *Console) feedPage(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	if !canImport(sess.user) {
		return c.refuse(ctx, errNoImport())
	}
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
		if !canImport(sess.user) {
			return c.refuse(ctx, errNoImport())
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
			return c.refuse(ctx, errNoImport())
		}
		return err
	}
	explainStoreRefusals(resp, rows)
	return c.showFeed(ctx, http.StatusOK, map[string]any{"Result": resp, "File": name})
}

// parseFeedFile reads a feed file as JSON (by its name) or CSV; msg says
// what is wrong with a file that cannot be read at all.
func (c *Console) parseFeedFile(name string, data []byte) (rows []store.FeedRow, msg string) {
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		var req syncproto.FeedRequest
		if err := syncproto.Decode(syncproto.JSON, bytes.NewReader(data), c.feedLimit, &req); err != nil {
			return nil, "JSON 文件格式有误：应是 {\"warnings\": [...]}，每条预警的字段与 CSV 的列名相同。"
		}
		for i, w := range req.Warnings {
			row := store.FeedRow{Num: i + 1, Warning: w}
			row.Err, row.Problems = feed.Check(&row.Warning, c.now())
			rows = append(rows, row)
		}
		return rows, ""
	}
	parsed, err := feed.ParseCSV(bytes.NewReader(data), c.now())
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return nil, "CSV 文件有误：" + feed.Explain(e).Message
		}
		return nil, "CSV 文件无法读取。"
	}
	for _, r := range parsed {
		rows = append(rows, store.FeedRow{Num: r.Num, Warning: r.Warning, Err: r.Err, Problems: r.Problems})
	}
	return rows, ""
}

// explainStoreRefusals words in Chinese the rows the store itself refused
// (their unit is outside the importer's, or unknown), which carry no
// problems of their own: every refused row then says why in Chinese.
func explainStoreRefusals(resp *syncproto.FeedResponse, rows []store.FeedRow) {
	unitOf := make(map[int]string, len(rows))
	for _, r := range rows {
		unitOf[r.Num] = r.Warning.Unit
	}
	for i := range resp.Invalid {
		inv := &resp.Invalid[i]
		if len(inv.Problems) > 0 {
			continue
		}
		msg := "这一行没有导入：" + label(codeLabels)(inv.Code) + "。"
		switch inv.Code {
		case syncproto.CodeForbidden:
			msg = "单位代码（unit）" + unitOf[inv.Row] + " 不在您的辖区内。"
		case syncproto.CodeInvalidRequest:
			msg = "单位代码（unit）" + unitOf[inv.Row] + " 不存在，请核对单位代码。"
		}
		inv.Problems = []syncproto.FeedProblem{{Field: feed.ColUnit, Message: msg}}
	}
}
