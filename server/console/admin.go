package console

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

// admin shows the users and devices of the admin's unit.
func (c *Console) admin(ctx echo.Context) error {
	return c.adminPage(ctx, http.StatusOK, ctx.QueryParam("done"))
}

var adminMessages = map[string]string{
	"saved": "已保存。", "revoked": "设备已停用。", "invalid": "内容有误，请检查后重试。", "forbidden": "没有权限。",
	syncproto.ReasonOwnAccount:    "不能停用自己的账号、取消自己的管理员权限或把自己调到其他单位；请由另一位管理员操作。",
	syncproto.ReasonLastRootAdmin: "这是市级最后一位在用的管理员，不能停用或取消其管理员权限；请先设置另一位市级管理员。",
}

func (c *Console) adminPage(ctx echo.Context, status int, done string) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	users, devices, err := c.app.Accounts(p)
	if err != nil {
		if syncproto.ErrorCode(err) == syncproto.CodeForbidden {
			return ctx.String(http.StatusForbidden, "只有管理员可以管理账号和设备。")
		}
		return err
	}
	names := map[string]string{}
	for _, u := range users {
		names[u.ID] = personName(u.Name) + "（" + u.Username + "）"
	}
	return c.render(ctx, status, "admin", map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Users": users, "Devices": devices, "Owners": names, "Done": adminMessages[done],
	})
}

// saveUser creates a user or changes one (name, unit, password, enabled).
// It changes only what the form sends: the account form leaves "enabled"
// as it is, the enable and disable buttons send nothing else that matters,
// and no form touches the administrator flag.
func (c *Console) saveUser(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	in := syncproto.UserInput{
		Username: ctx.FormValue("username"), Name: ctx.FormValue("name"), Unit: ctx.FormValue("unit"),
		Password: ctx.FormValue("password"),
	}
	switch ctx.FormValue("active") {
	case "true":
		in.Active = new(true)
	case "false":
		in.Active = new(false)
	}
	_, err := c.app.UpsertUsers(ctx.Request().Context(), p, &syncproto.UsersRequest{Users: []syncproto.UserInput{in}})
	return c.adminDone(ctx, err, "saved")
}

// revoke stops a device, with or without wiping it.
func (c *Console) revoke(ctx echo.Context) error {
	p := ctx.Get("principal").(app.Principal)
	_, err := c.app.RevokeDevice(ctx.Request().Context(), p, ctx.FormValue("device"), ctx.FormValue("wipe") == "true")
	return c.adminDone(ctx, err, "revoked")
}

func (c *Console) adminDone(ctx echo.Context, err error, ok string) error {
	switch code := syncproto.ErrorCode(err); code {
	case "":
		return ctx.Redirect(http.StatusSeeOther, "/console/admin?done="+ok)
	case syncproto.CodeInvalidRequest, syncproto.CodeNotFound:
		return c.adminPage(ctx, http.StatusBadRequest, "invalid")
	case syncproto.CodeForbidden:
		return c.adminPage(ctx, http.StatusForbidden, forbiddenMessage(err))
	}
	return err
}

// forbiddenMessage picks the message of a refused change: the rule that
// refused it when the error names one, else plain "no permission".
func forbiddenMessage(err error) string {
	if perr := syncproto.AsError(err); perr != nil {
		if reason, _ := perr.Details["reason"].(string); adminMessages[reason] != "" {
			return reason
		}
	}
	return "forbidden"
}
