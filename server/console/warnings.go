package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi/query"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// statusUnfinished is the list filter's value for every status but
// closed, which the list shows when its address names no status: a lead
// opens the list for the work still to do, soonest deadline first, not for
// last month's closed warnings. 全部 sends an empty status.
const statusUnfinished = "unfinished"

// unfinishedStatuses are what statusUnfinished stands for.
var unfinishedStatuses = strings.Join([]string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
	syncproto.WarningInProgress, syncproto.WarningResolved}, ",")

// listStatuses are the statuses the list's filter offers, in the order of
// the work.
var listStatuses = []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
	syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed}

// warnings shows the list. Its filters are in the URL (a GET form), so a
// view can be bookmarked, reloaded and gone back to; the free-text search
// is not: it is posted (searchWarnings) and kept in the session, so a
// name or phone searched for never appears in a URL or a log.
func (c *Console) warnings(ctx echo.Context) error {
	lv, err := c.listView(ctx, ctx.QueryParam)
	if err != nil {
		return err
	}
	p, sess, n, form := lv.p, lv.sess, lv.names, lv.form
	if ctx.QueryParam("search") == "none" {
		// A dashboard count's link: its list must hold what the count
		// says, so an earlier search no longer applies.
		sess.mu.Lock()
		sess.listText = ""
		sess.mu.Unlock()
		form.Text = ""
	}
	if _, chosen := ctx.QueryParams()["status"]; !chosen {
		form.Status = statusUnfinished
	}
	form.Cursor = ctx.QueryParam("cursor")
	list, status, errMsg, err := c.list(ctx, p, n, form)
	if err != nil {
		return err
	}
	next := ""
	if list.More {
		next = filterQuery(form, list.Cursor)
	}
	return c.render(ctx, status, "warnings", map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Form": form, "List": list, "Error": errMsg, "Names": n,
		"Units": lv.units, "Statuses": listStatuses, "Next": next,
	})
}

// listView is what the list page and its export both start from: who asks,
// their session, the names of their scope, and the filters read by get
// with the session's search.
type listView struct {
	p     app.Principal
	sess  *session
	units []syncproto.Unit
	names *names
	form  query.ListForm
}

func (c *Console) listView(ctx echo.Context, get func(string) string) (*listView, error) {
	lv := &listView{p: ctx.Get("principal").(app.Principal), sess: ctx.Get(sessionKey).(*session)}
	units, cadres, err := c.app.Directory(lv.p)
	if err != nil {
		return nil, err
	}
	lv.units, lv.names, lv.form = units, newNames(units, cadres), listFilters(get)
	lv.sess.mu.Lock()
	lv.form.Text = lv.sess.listText
	lv.sess.mu.Unlock()
	return lv, nil
}

// list runs the list's query; a query that is wrong gives an empty list, a
// 400 and a message in Chinese naming the field.
func (c *Console) list(ctx echo.Context, p app.Principal, n *names, form query.ListForm) (*syncproto.WarningList, int, string, error) {
	q, err := parseList(n, form)
	if err == nil {
		var list *syncproto.WarningList
		if list, err = c.app.List(ctx.Request().Context(), p, q); err == nil {
			return list, http.StatusOK, "", nil
		}
	}
	e := syncproto.AsError(err)
	if e == nil {
		return nil, 0, "", err
	}
	return &syncproto.WarningList{}, e.Status(), filterError(e, form), nil
}

// parseList reads the list's form into the service's query: the unit by
// its name or code, the deadline first when no order is chosen.
func parseList(n *names, form query.ListForm) (app.ListQuery, error) {
	code, ok := n.unitByName(form.Unit)
	if !ok {
		return app.ListQuery{}, syncproto.InvalidField("unit", "no unit named so in the user's scope")
	}
	form.Unit = code
	if form.Status == statusUnfinished {
		form.Status = unfinishedStatuses
	}
	if form.Sort == "" {
		form.Sort = store.SortDeadline
	}
	return form.Parse()
}

// filterError says in Chinese which filter is wrong.
func filterError(e *syncproto.Error, form query.ListForm) string {
	field, _ := e.Details["field"].(string)
	switch {
	case field == "unit" && e.Code == syncproto.CodeInvalidRequest:
		return "筛选条件「单位」有误：在您的辖区内没有找到“" + form.Unit + "”，请从列表中选择单位。"
	case e.Code == syncproto.CodeForbidden:
		return "筛选条件「单位」有误：所选单位不在您的辖区内。"
	case field == "cursor" || e.Code == syncproto.CodeCursorExpired:
		return "翻页位置已失效，请从第一页重新查看。"
	case fieldLabels[field] != "":
		return "筛选条件「" + fieldLabels[field] + "」有误，请检查后重试。"
	}
	return "筛选条件有误，请检查后重试。"
}

// searchWarnings keeps the posted free-text search in the session and
// sends the browser back to the list with the posted filters in the URL:
// a reload or the back button then asks nothing.
func (c *Console) searchWarnings(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	sess.mu.Lock()
	sess.listText = strings.TrimSpace(ctx.FormValue("q"))
	sess.mu.Unlock()
	return ctx.Redirect(http.StatusSeeOther, "/console/warnings"+filterQuery(listFilters(ctx.FormValue), ""))
}

// listFilters reads the list's filters but the free text, from a URL's
// query or a form.
func listFilters(get func(string) string) query.ListForm {
	return query.ListForm{
		Unit: get("unit"), Status: get("status"), Risk: get("risk"), FraudType: get("fraud_type"),
		Overdue: get("overdue"), Flagged: get("flagged"), From: get("from"), To: get("to"), Sort: get("sort"),
		Escalated: get("escalated"),
	}
}

// filterQuery writes the filters (never the free text) as a URL query,
// with a page's cursor when given; "" when there is none.
func filterQuery(f query.ListForm, cursor string) string {
	v := url.Values{}
	for _, kv := range [][2]string{{"unit", f.Unit}, {"status", f.Status}, {"risk", f.Risk}, {"fraud_type", f.FraudType},
		{"overdue", f.Overdue}, {"flagged", f.Flagged}, {"escalated", f.Escalated}, {"from", f.From}, {"to", f.To}, {"sort", f.Sort}, {"cursor", cursor}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	if f.Status == "" {
		v.Set("status", "") // 全部, not the unfinished the list shows by default
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// warning shows one warning: its state, who holds it now, the attempts as
// a timeline with who recorded each, the reviews with who made them, the
// flags and the history from the log. The phone shows whole, as a tel:
// link; WarningDetail records the read in the audit log.
func (c *Console) warning(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	d, err := c.app.WarningDetail(ctx.Request().Context(), p, ctx.Param("id"))
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return c.refuse(ctx, syncproto.Errorf(syncproto.CodeNotFound, "没有找到这条预警，或它不在您的辖区内。"))
		}
		return err
	}
	units, cadres, err := c.app.Directory(p)
	if err != nil {
		return err
	}
	n := newNames(units, cadres)
	for _, h := range d.History {
		n.addPerson(h.ActorID, h.ActorName)
	}
	return c.render(ctx, http.StatusOK, "warning", withActions(map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "W": d.Warning, "History": d.History, "Names": n,
		"Version": strconv.FormatUint(d.Warning.Version, 10), "Units": units, "Cadres": cadres,
	}, p, d.Warning, ctx.QueryParam("done")))
}

// photo serves a photo of an attempt to a console user whose scope holds
// its warning, by the same rule as the API.
func (c *Console) photo(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sum := ctx.Param("sha256")
	if !syncproto.ValidSHA256(sum) {
		return c.refuse(ctx, syncproto.InvalidField("sha256", "照片编号有误。"))
	}
	meta, f, err := c.app.OpenPhoto(ctx.Request().Context(), p, sum)
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return c.refuse(ctx, syncproto.Errorf(syncproto.CodeNotFound, "没有找到这张照片。"))
		}
		return err
	}
	defer f.Close()
	ctx.Response().Header().Set("Cache-Control", "private, max-age=86400")
	return ctx.Stream(http.StatusOK, meta.ContentType, f)
}
