package console

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// exportLimit bounds one CSV export; a larger one is narrowed by filters.
const exportLimit = 20_000

// The console's exports are for people, who open them in Excel or WPS:
// headers in Chinese, a UTF-8 byte order mark (without it Excel reads the
// file as GBK), times in Beijing, amounts in yuan, codes as words, units
// by name. Every cell goes through feed.SafeCell: names and numbers come
// from the feed, and a spreadsheet must run none as a formula. The API's
// CSV (GET /v1/feedback?format=csv) is for programs and stays as the
// protocol writes it (docs/API.md).

// exportTime is the layout of a time in an export.
const exportTime = "2006-01-02 15:04"

// exportList writes the current list, every page of it, as CSV: the
// filters the page shows (posted with it) and the session's search.
func (c *Console) exportList(ctx echo.Context) error {
	lv, err := c.listView(ctx, ctx.FormValue)
	if err != nil {
		return err
	}
	p, n := lv.p, lv.names
	q, err := parseList(n, lv.form)
	if err != nil {
		return err
	}
	q.Limit = 500
	var buf bytes.Buffer
	buf.WriteString("\uFEFF")
	w := feed.NewCSVWriter(&buf)
	_ = w.Write([]string{"预警编号", "姓名", "电话", "地址", "单位", "单位代码", "诈骗类型", "风险", "状态", "结果", "逾期", "标记", "接收时间", "处置期限"})
	for count := 0; count < exportLimit; {
		list, err := c.app.List(ctx.Request().Context(), p, q)
		if err != nil {
			return err
		}
		for _, it := range list.Items {
			_ = w.Write([]string{it.ExternalID, it.Name, it.Phone, it.Address, unitName(n, it.Unit), it.Unit, it.FraudType,
				label(riskLabels)(it.Risk), label(statusLabels)(it.Status), label(outcomeLabels)(it.Outcome), yesNo(it.Overdue),
				strconv.Itoa(it.OpenFlags), beijingTime(it.ReceivedAt, exportTime), beijingTime(it.Deadline, exportTime)})
		}
		count += len(list.Items)
		if !list.More {
			break
		}
		q.Cursor = list.Cursor
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return sendCSV(ctx, "预警列表.csv", "warnings.csv", buf.Bytes())
}

// sendCSV answers with a CSV file to save, named in Chinese for the
// browsers that read RFC 6266's filename* and in ASCII for the rest.
func sendCSV(ctx echo.Context, name, ascii string, data []byte) error {
	ctx.Response().Header().Set("Content-Disposition",
		fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, url.PathEscape(name)))
	return ctx.Blob(http.StatusOK, syncproto.MediaCSV+"; charset=utf-8", data)
}

func yesNo(b bool) string {
	if b {
		return "是"
	}
	return "否"
}

// exportFeedback writes every outcome of the unit, for the people who
// report it upward.
func (c *Console) exportFeedback(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	units, cadres, err := c.app.Directory(p)
	if err != nil {
		return err
	}
	n := newNames(units, cadres)
	var buf bytes.Buffer
	buf.WriteString("\uFEFF")
	w := feed.NewCSVWriter(&buf)
	_ = w.Write([]string{"预警编号", "状态", "劝阻结果", "是否联系上", "被骗金额（元）", "单位", "单位代码", "负责人",
		"预警时间", "首次联系时间", "办结待审时间", "办结时间"})
	for cursor, count := "", 0; count < 10*exportLimit; {
		page, err := c.app.Feedback(p, cursor, syncproto.MaxPullLimit)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			_ = w.Write([]string{it.ExternalID, label(statusLabels)(it.Status), label(outcomeLabels)(it.Outcome), yesNo(it.Reached),
				yuan(it.LossFen), unitName(n, it.Unit), it.Unit, personName(it.CadreName), beijingTime(it.WarnedAt, exportTime),
				optionalTime(it.FirstContactAt), optionalTime(it.ResolvedAt), optionalTime(it.ClosedAt)})
		}
		count += len(page.Items)
		if !page.More {
			break
		}
		cursor = page.Cursor
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return sendCSV(ctx, "劝阻反馈.csv", "feedback.csv", buf.Bytes())
}

// optionalTime is a time not yet known as an empty cell.
func optionalTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return beijingTime(*t, exportTime)
}

// flags is the queue of warnings with open flags, each flag explained.
func (c *Console) flags(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	queue, err := c.app.Flags(ctx.Request().Context(), p, 200)
	if err != nil {
		return err
	}
	units, cadres, err := c.app.Directory(p)
	if err != nil {
		return err
	}
	return c.render(ctx, http.StatusOK, "flags", map[string]any{"User": sess.user, "CSRF": sess.csrf, "Rows": queue.Warnings, "More": queue.More,
		"Names": newNames(units, cadres)})
}
