package console

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

// act takes a lead's action on a warning through the same op path as a
// phone: an op with this browser's next client_seq and the version the
// page showed as its base, so an action on a stale page is a late op like
// any other (flagged where the rules say, never lost). An action that is
// incomplete, or that the warning's state no longer allows, is not pushed
// at all: the lead is told why, and the history shows only what happened.
func (c *Console) act(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	id := ctx.Param("id")
	action := ctx.FormValue("action")
	typ, decision := syncproto.ActionOp(action)
	if typ == "" || action == syncproto.ActionRecord {
		return ctx.String(http.StatusBadRequest, "未知的操作。")
	}
	base, _ := strconv.ParseUint(ctx.FormValue("base_version"), 10, 64)
	op := syncproto.Op{ID: uuid.Must(uuid.NewV7()).String(), ClientSeq: 1, Type: typ, WarningID: id, BaseVersion: base, At: c.now().UTC()}
	op.Body = syncproto.OpBody{Decision: decision, Comment: ctx.FormValue("comment"), Assignee: ctx.FormValue("assignee"),
		Unit: ctx.FormValue("unit"), Reason: ctx.FormValue("reason"), Answer: ctx.FormValue("answer")}
	if decision == "" {
		op.Body.Comment = ""
	}
	if err := op.ValidateNew(); err != nil {
		field, _ := err.Details["field"].(string)
		return redirectDone(ctx, id, "invalid-"+field)
	}
	allowed, err := c.app.AllowedActions(p, id)
	if err != nil {
		if e := syncproto.AsError(err); e != nil {
			return ctx.String(e.Status(), "没有找到这条预警，或它不在您的辖区内。")
		}
		return err
	}
	if !slices.Contains(allowed, action) {
		return redirectDone(ctx, id, "refused")
	}
	sess.mu.Lock()
	op.ClientSeq = sess.seq + 1
	resp, err := c.app.Push(ctx.Request().Context(), p, &syncproto.PushRequest{DeviceID: sess.deviceID, Ops: []syncproto.Op{op}})
	if err == nil {
		sess.seq = resp.LastClientSeq
	}
	sess.mu.Unlock()
	done := "applied"
	switch {
	case err != nil && syncproto.ErrorCode(err) == syncproto.CodeInvalidRequest:
		done = "invalid"
	case err != nil:
		return err
	case resp.Results[0].Status == syncproto.StatusRejected:
		done = "rejected-" + resp.Results[0].Code
	case len(resp.Results[0].Flags) > 0:
		done = "flagged"
	}
	return redirectDone(ctx, id, done)
}

func redirectDone(ctx echo.Context, id, done string) error {
	return ctx.Redirect(http.StatusSeeOther, fmt.Sprintf("/console/warnings/%s?done=%s", url.PathEscape(id), url.QueryEscape(done)))
}

// doneMessage is what the page says of an action after the redirect; a
// refusal shows as an error, never in the box that says it worked.
type doneMessage struct {
	text  string
	error bool
}

var doneMessages = map[string]doneMessage{
	"applied":                  {"操作已生效。", false},
	"flagged":                  {"操作已生效，并已标记待复核（页面不是最新的，或与其他记录冲突）。", false},
	"invalid":                  {"没有执行：操作内容不完整，请检查后重试。", true},
	"invalid-body.comment":     {"没有执行：退回重办必须填写审核意见，写明需要重办什么。", true},
	"invalid-body.reason":      {"没有执行：上报求助必须填写求助原因。", true},
	"invalid-body.answer":      {"没有执行：答复求助必须填写答复内容。", true},
	"invalid-body.assignee":    {"没有执行：请选择要指派的村干部。", true},
	"invalid-body.unit":        {"没有执行：请选择要下发到的单位。", true},
	"refused":                  {"没有执行：预警当前的状态不允许这个操作（页面可能不是最新的），下面是它现在的状态。", true},
	"rejected-forbidden":       {"没有执行：这条预警或所选对象不在您的辖区内。", true},
	"rejected-invalid_state":   {"没有执行：预警当前的状态不允许这个操作，请刷新页面查看最新状态。", true},
	"rejected-invalid_request": {"没有执行：所选的单位或人员不可用（可能已停用），请重新选择。", true},
	"rejected-warning_full":    {"没有执行：这条预警的记录已经太多，请先审核办结。", true},
}

// withActions adds to a warning page's data what its action part shows:
// Allow, the actions p may take on w now (a form for each, and no other);
// Escalations, the requests for help and their answers; and Done and
// DoneError, what became of the action just taken.
func withActions(data map[string]any, p app.Principal, w *syncproto.Warning, done string) map[string]any {
	allow := map[string]bool{}
	for _, a := range syncproto.AllowedActions(w, p.Actor) {
		allow[a] = true
	}
	msg, ok := doneMessages[done]
	if !ok && done != "" {
		msg = doneMessage{"没有执行。", true}
	}
	out := maps.Clone(data)
	out["Allow"], out["Escalations"], out["Done"], out["DoneError"] = allow, w.Escalations, msg.text, msg.error
	return out
}
