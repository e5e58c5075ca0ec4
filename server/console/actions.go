package console

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

// act takes a lead's action on a warning through the same op path as a
// phone: an op with this browser's next client_seq and the version the
// page showed as its base, so an action on a stale page is a late op like
// any other (flagged where the rules say, never lost).
func (c *Console) act(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	id := ctx.Param("id")
	base, _ := strconv.ParseUint(ctx.FormValue("base_version"), 10, 64)
	op := syncproto.Op{ID: uuid.Must(uuid.NewV7()).String(), WarningID: id, BaseVersion: base, At: c.now().UTC()}
	switch ctx.FormValue("action") {
	case "approve", "return":
		op.Type = syncproto.OpReviewed
		op.Body = syncproto.OpBody{Decision: ctx.FormValue("action"), Comment: ctx.FormValue("comment")}
	case "assign":
		op.Type, op.Body.Assignee = syncproto.OpAssigned, ctx.FormValue("assignee")
	case "dispatch":
		op.Type, op.Body.Unit = syncproto.OpDispatched, ctx.FormValue("unit")
	case "escalate":
		op.Type, op.Body.Reason = syncproto.OpEscalated, ctx.FormValue("reason")
	default:
		return ctx.String(http.StatusBadRequest, "未知的操作。")
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
	return ctx.Redirect(http.StatusSeeOther, fmt.Sprintf("/console/warnings/%s?done=%s", id, done))
}

// doneMessages say what became of an action, after the redirect.
var doneMessages = map[string]string{
	"applied":                "操作已生效。",
	"flagged":                "操作已生效，并已标记待复核（页面不是最新的，或与其他记录冲突）。",
	"invalid":                "操作内容不完整，请检查后重试。",
	"rejected-forbidden":     "没有执行：这条预警或所选对象不在您的辖区内。",
	"rejected-invalid_state": "没有执行：预警当前的状态不允许这个操作，请刷新页面查看最新状态。",
}
