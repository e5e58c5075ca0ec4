package console

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// exportLimit bounds one CSV export; a larger one is narrowed by filters.
const exportLimit = 20_000

// exportList writes the current list, every page of it, as CSV. Its filters
// come by POST like the list's, so no searched name reaches a URL.
func (c *Console) exportList(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	q, err := listForm(ctx).Parse()
	if err != nil {
		return err
	}
	q.Limit = 500
	var buf bytes.Buffer
	buf.WriteString("\uFEFF") // Excel reads UTF-8 with a BOM
	// Cells through feed.SafeCell: names and numbers come from the feed,
	// and the file is opened in a spreadsheet.
	w := feed.NewCSVWriter(&buf)
	_ = w.Write([]string{"预警编号", "姓名", "电话", "地址", "单位", "诈骗类型", "风险", "状态", "结果", "逾期", "标记", "接收时间", "期限"})
	for n := 0; n < exportLimit; {
		list, err := c.app.List(ctx.Request().Context(), p, q)
		if err != nil {
			return err
		}
		for _, it := range list.Items {
			_ = w.Write([]string{it.ExternalID, it.Name, it.Phone, it.Address, it.Unit, it.FraudType, riskLabels[it.Risk],
				statusLabels[it.Status], outcomeLabels[it.Outcome], yesNo(it.Overdue), strconv.Itoa(it.OpenFlags),
				it.ReceivedAt.In(syncproto.Beijing).Format("2006-01-02 15:04"), it.Deadline.In(syncproto.Beijing).Format("2006-01-02 15:04")})
		}
		n += len(list.Items)
		if !list.More {
			break
		}
		q.Cursor = list.Cursor
	}
	if err := w.Flush(); err != nil {
		return err
	}
	ctx.Response().Header().Set("Content-Disposition", `attachment; filename="warnings.csv"`)
	return ctx.Blob(http.StatusOK, syncproto.MediaCSV+"; charset=utf-8", buf.Bytes())
}

func yesNo(b bool) string {
	if b {
		return "是"
	}
	return "否"
}

// exportFeedback writes every outcome of the unit as the feedback CSV for
// the national platform.
func (c *Console) exportFeedback(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	var items []syncproto.FeedbackItem
	for cursor := ""; len(items) < 10*exportLimit; {
		page, err := c.app.Feedback(p, cursor, syncproto.MaxPullLimit)
		if err != nil {
			return err
		}
		items = append(items, page.Items...)
		if !page.More {
			break
		}
		cursor = page.Cursor
	}
	var buf bytes.Buffer
	if err := feed.WriteFeedbackCSV(&buf, items); err != nil {
		return err
	}
	ctx.Response().Header().Set("Content-Disposition", `attachment; filename="feedback.csv"`)
	return ctx.Blob(http.StatusOK, syncproto.MediaCSV+"; charset=utf-8", buf.Bytes())
}

// flags is the queue of warnings with open flags, each flag explained.
func (c *Console) flags(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	queue, err := c.app.Flags(ctx.Request().Context(), p, 200)
	if err != nil {
		return err
	}
	return c.render(ctx, http.StatusOK, "flags", map[string]any{"User": sess.user, "CSRF": sess.csrf, "Rows": queue.Warnings, "More": queue.More})
}
