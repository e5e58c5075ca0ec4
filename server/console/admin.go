package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// admin shows a page of the accounts of the admin's unit (filtered by
// unit in the address and by the search text of the session) and the
// phones of those accounts; console sessions are not phones and are not
// listed.
func (c *Console) admin(ctx echo.Context) error {
	return c.adminPage(ctx, http.StatusOK, ctx.QueryParam("done"))
}

var adminMessages = map[string]string{
	"saved": "已保存。", "revoked": "设备已停用。", "unit": "没有这个单位，或不在您的管辖范围内；下面是全部账号。", "invalid": "内容有误，请检查后重试。", "forbidden": "没有权限。",
	syncproto.ReasonOwnAccount:    "不能停用自己的账号、取消自己的管理员权限或把自己调到其他单位；请由另一位管理员操作。",
	syncproto.ReasonLastRootAdmin: "这是市级最后一位在用的管理员，不能停用或取消其管理员权限；请先设置另一位市级管理员。",
}

func (c *Console) adminPage(ctx echo.Context, status int, done string) error {
	p := ctx.Get("principal").(app.Principal)
	sess := ctx.Get(sessionKey).(*session)
	pageNo, _ := strconv.Atoi(ctx.QueryParam("page"))
	q := app.AccountQuery{Unit: ctx.QueryParam("unit"), Text: sess.accountSearch(), Page: pageNo}
	res, err := c.app.AccountsPage(p, q)
	if err != nil && q.Unit != "" && p.Admin {
		// A unit not in the tree, or not the admin's: the whole list,
		// saying so.
		done, q.Unit = "unit", ""
		res, err = c.app.AccountsPage(p, q)
	}
	if err != nil {
		if syncproto.ErrorCode(err) == syncproto.CodeForbidden {
			return ctx.String(http.StatusForbidden, "只有管理员可以管理账号和设备。")
		}
		return err
	}
	unitNames := map[string]string{}
	for _, u := range res.Units {
		unitNames[u.Code] = u.Name
	}
	rows := make([]accountRow, len(res.Users))
	names := map[string]string{}
	for i, u := range res.Users {
		rows[i] = accountRow{User: u, UnitName: unitNames[u.Unit], Role: roleLabels[u.Role], Self: u.ID == sess.user.ID}
		names[u.ID] = personName(u.Name) + "（" + u.Username + "）"
	}
	return c.render(ctx, status, "admin", map[string]any{
		"User": sess.user, "CSRF": sess.csrf, "Accounts": rows, "Devices": res.Phones, "Owners": names, "Done": adminMessages[done],
		"Units": res.Units, "Unit": q.Unit, "Search": q.Text, "Total": res.Total, "Page": res.Page, "Pages": res.Pages,
		"Prev": accountsURL(q.Unit, res.Page-1, res.Pages), "Next": accountsURL(q.Unit, res.Page+1, res.Pages),
	})
}

// accountRow is an account as the accounts page shows it.
type accountRow struct {
	store.User
	UnitName, Role string
	// Self is the admin's own account, which the page offers no control
	// to disable: the service refuses it anyway (own_account).
	Self bool
}

// accountsURL is the address of a page of the accounts list, with the
// unit filter; "" when there is no such page. The search text is not in
// it: it is kept in the session (searchAccounts).
func accountsURL(unit string, page, pages int) string {
	if page < 1 || page > pages {
		return ""
	}
	v := url.Values{}
	if unit != "" {
		v.Set("unit", unit)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/console/admin"
	}
	return "/console/admin?" + v.Encode()
}

// maxAccountSearch bounds the search text kept in a session, in runes.
const maxAccountSearch = 64

// searchAccounts keeps the accounts search text in the session, out of
// the address (and so out of browser history and proxy logs), and goes
// to the first page of the chosen unit. An empty text shows every
// account.
func (c *Console) searchAccounts(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	text := []rune(strings.TrimSpace(ctx.FormValue("q")))
	sess.setAccountSearch(string(text[:min(len(text), maxAccountSearch)]))
	return ctx.Redirect(http.StatusSeeOther, accountsURL(ctx.FormValue("unit"), 1, 1))
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
