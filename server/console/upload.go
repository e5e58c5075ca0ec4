package console

import (
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// maxUpload bounds a feed file uploaded from the console.
const maxUpload = 16 << 20

func (c *Console) feedPage(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	return c.render(ctx, http.StatusOK, "feed", map[string]any{"User": sess.user, "CSRF": sess.csrf})
}

// uploadFeed imports a CSV or JSON feed file and shows each row's result.
func (c *Console) uploadFeed(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	show := func(status int, data map[string]any) error {
		data["User"], data["CSRF"] = sess.user, sess.csrf
		return c.render(ctx, status, "feed", data)
	}
	fh, err := ctx.FormFile("file")
	if err != nil {
		return show(http.StatusBadRequest, map[string]any{"Error": "请选择要上传的预警文件（CSV 或 JSON）。"})
	}
	if fh.Size > maxUpload {
		return show(http.StatusRequestEntityTooLarge, map[string]any{"Error": "文件太大，请拆分后上传。"})
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []store.FeedRow
	if strings.HasSuffix(strings.ToLower(fh.Filename), ".json") {
		var req syncproto.FeedRequest
		if err := syncproto.Decode(syncproto.JSON, f, maxUpload, &req); err != nil {
			return show(http.StatusBadRequest, map[string]any{"Error": "JSON 文件格式有误：" + syncproto.AsError(err).Message})
		}
		for i, w := range req.Warnings {
			rows = append(rows, store.FeedRow{Num: i + 1, Warning: w})
		}
	} else {
		parsed, err := feed.ParseCSV(io.LimitReader(f, maxUpload), c.now())
		if err != nil {
			msg := "CSV 文件无法读取。"
			if e := syncproto.AsError(err); e != nil {
				msg = "CSV 文件有误：" + e.Message
			}
			return show(http.StatusBadRequest, map[string]any{"Error": msg})
		}
		for _, r := range parsed {
			rows = append(rows, store.FeedRow{Num: r.Num, Warning: r.Warning, Err: r.Err})
		}
	}
	resp, err := c.app.ImportFeed(ctx.Request().Context(), p, rows)
	if err != nil {
		if e := syncproto.AsError(err); e != nil && e.Code == syncproto.CodeForbidden {
			return show(http.StatusForbidden, map[string]any{"Error": "只有市反诈中心可以导入预警。"})
		}
		return err
	}
	return show(http.StatusOK, map[string]any{"Result": resp, "File": fh.Filename})
}
