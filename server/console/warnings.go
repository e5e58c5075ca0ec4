package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi/query"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Labels in Chinese for what the protocol names in English.
var (
	statusLabels = map[string]string{
		syncproto.WarningNew: "待分派", syncproto.WarningDispatched: "已下发", syncproto.WarningAssigned: "已指派",
		syncproto.WarningInProgress: "劝阻中", syncproto.WarningResolved: "待审核", syncproto.WarningClosed: "已办结",
	}
	riskLabels    = map[string]string{syncproto.RiskHigh: "高", syncproto.RiskMedium: "中", syncproto.RiskLow: "低"}
	outcomeLabels = map[string]string{
		syncproto.OutcomeDissuaded: "劝阻成功", syncproto.OutcomeAlreadyDefrauded: "已被骗", syncproto.OutcomeNotTarget: "非预警对象",
		syncproto.OutcomeUnreachable: "未联系上", syncproto.OutcomeRefused: "拒绝沟通",
	}
	methodLabels = map[string]string{syncproto.MethodVisit: "上门", syncproto.MethodPhone: "电话", syncproto.MethodVideo: "视频", syncproto.MethodOther: "其他"}
	flagLabels   = map[string]string{
		syncproto.FlagStaleAssignee:       "记录人已不是当前负责人（可能是改派前离线记录的）",
		syncproto.FlagAfterClose:          "办结之后才收到的记录",
		syncproto.FlagConflictingOutcomes: "与之前的劝阻结果不一致",
		syncproto.FlagStaleReview:         "审核时还没有看到最新的劝阻记录",
		syncproto.FlagFutureTime:          "手机时间比服务器快五分钟以上",
	}
)

func label(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return k
	}
}

// opLabels name the log's entries for a lead.
var opLabels = map[string]string{
	syncproto.OpCreated: "接收预警", syncproto.OpDispatched: "下发", syncproto.OpAssigned: "指派",
	syncproto.OpRecorded: "劝阻记录", syncproto.OpEscalated: "上报求助", syncproto.OpReviewed: "审核",
	"photo.received": "收到照片", "warning.archived": "从村干部手机移除", "warning.redacted": "个人信息已清除",
	syncproto.OpAnswered: "答复求助",
}

func init() {
	funcs["op"] = label(opLabels)
	// Times show as the desk's clock in Beijing, whatever the server's zone.
	funcs["local"] = func(t time.Time, layout string) string { return t.In(syncproto.Beijing).Format(layout) }
	funcs["status"] = label(statusLabels)
	funcs["risk"] = label(riskLabels)
	funcs["outcome"] = label(outcomeLabels)
	funcs["method"] = label(methodLabels)
	funcs["flag"] = label(flagLabels)
}

// warnings shows the list. Filters come by POST, with the CSRF token, so
// that a name or phone searched for never appears in a URL or a log.
func (c *Console) warnings(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	form := listForm(ctx)
	form.Cursor = ctx.FormValue("cursor")
	q, err := form.Parse()
	var list *syncproto.WarningList
	if err == nil {
		list, err = c.app.List(ctx.Request().Context(), p, q)
	}
	status := http.StatusOK
	errMsg := ""
	if err != nil {
		if syncproto.AsError(err) == nil {
			return err
		}
		status, errMsg = http.StatusBadRequest, "筛选条件有误，请检查后重试。"
		list = &syncproto.WarningList{}
	}
	return c.render(ctx, status, "warnings", map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Form": form, "List": list, "Error": errMsg,
		"Statuses": []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
			syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed},
	})
}

// warning shows one warning: its state, the attempts as a timeline, the
// reviews, the flags and the history from the log.
func (c *Console) warning(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	d, err := c.app.WarningDetail(ctx.Request().Context(), p, ctx.Param("id"))
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return ctx.String(e.Status(), "没有找到这条预警，或它不在您的辖区内。")
		}
		return err
	}
	units, cadres, err := c.app.Directory(p)
	if err != nil {
		return err
	}
	return c.render(ctx, http.StatusOK, "warning", withActions(map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "W": d.Warning, "History": d.History,
		"Version": strconv.FormatUint(d.Warning.Version, 10), "Units": units, "Cadres": cadres,
	}, p, d.Warning, ctx.QueryParam("done")))
}

// photo serves a photo of an attempt to a console user whose scope holds
// its warning, by the same rule as the API.
func (c *Console) photo(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sum := ctx.Param("sha256")
	if !syncproto.ValidSHA256(sum) {
		return ctx.String(http.StatusBadRequest, "照片编号有误。")
	}
	meta, f, err := c.app.OpenPhoto(p, sum)
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return ctx.String(e.Status(), "没有找到这张照片。")
		}
		return err
	}
	defer f.Close()
	ctx.Response().Header().Set("Cache-Control", "private, max-age=86400")
	return ctx.Stream(http.StatusOK, meta.ContentType, f)
}

// listForm reads the list's filters from a form: those the page offers.
func listForm(ctx echo.Context) query.ListForm {
	return query.ListForm{
		Unit: ctx.FormValue("unit"), Status: ctx.FormValue("status"), Risk: ctx.FormValue("risk"),
		FraudType: ctx.FormValue("fraud_type"), Overdue: ctx.FormValue("overdue"), Flagged: ctx.FormValue("flagged"),
		From: ctx.FormValue("from"), To: ctx.FormValue("to"), Text: ctx.FormValue("q"), Sort: ctx.FormValue("sort"),
		Escalated: ctx.FormValue("escalated"),
	}
}
