package console

import (
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// htmlErrors answers a browser's refused request (out of scope, an
// expired form, a page that does not exist, a form too large) with a page
// inside the console's layout that says what happened in Chinese and
// leads back. A request that does not accept text/html (a script, the
// tests of the protocol's envelope) gets the protocol's error as before.
// Errors that are not the protocol's (the server's own failures) go on to
// the server's handler, which logs them.
func (c *Console) htmlErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		err := next(ctx)
		if err == nil || ctx.Response().Committed || !acceptsHTML(ctx.Request()) {
			return err
		}
		status, msg, ok := errorText(err)
		if !ok {
			return err
		}
		return c.errorPage(ctx, status, msg)
	}
}

// errorPage renders a refusal inside the layout, with the signed-in
// user's navigation when there is one.
func (c *Console) errorPage(ctx echo.Context, status int, msg string) error {
	data := map[string]any{"Status": status, "Message": msg, "Back": backTo(ctx.Request())}
	if sess := c.current(ctx); sess != nil {
		data["User"], data["CSRF"] = sess.user, sess.csrf
	}
	return c.render(ctx, status, "error", data)
}

// refuse answers a handler's refusal: the error page for a browser, the
// protocol's error for anything else.
func (c *Console) refuse(ctx echo.Context, e *syncproto.Error) error {
	if !acceptsHTML(ctx.Request()) {
		return e
	}
	_, msg, _ := errorText(e)
	return c.errorPage(ctx, e.Status(), msg)
}

// acceptsHTML reports whether the client asked for a page.
func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get(echo.HeaderAccept), "text/html")
}

// errorText is the status and Chinese sentence of a refusal; ok is false
// for an error that is not a refusal.
func errorText(err error) (status int, msg string, ok bool) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, "没有这个页面。请检查地址，或从上方的菜单进入。", true
		case http.StatusMethodNotAllowed:
			return he.Code, "这个页面不接受这样的请求。请从控制台的页面操作。", true
		}
		return he.Code, "请求没有完成，请返回后重试。", true
	}
	e := syncproto.AsError(err)
	if e == nil || e.Code == syncproto.CodeInternal || e.Code == syncproto.CodeUnavailable {
		return 0, "", false
	}
	// The console's own refusals are written in Chinese; the service's
	// are in English for the API, and a person reads the code's word.
	if hasHan(e.Message) {
		return e.Status(), e.Message, true
	}
	switch e.Code {
	case syncproto.CodeNotFound, syncproto.CodeForbidden:
		return e.Status(), "没有找到，或不在您的辖区内。", true
	}
	return e.Status(), "没有执行：" + label(codeLabels)(e.Code) + "。", true
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// backTo is the page the error page leads back to: the page whose form
// was posted, when it has one, else the overview.
func backTo(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/console/warnings/") && r.Method == http.MethodPost:
		return p
	case strings.HasPrefix(p, "/console/warnings"), strings.HasPrefix(p, "/console/export/warnings"):
		return "/console/warnings"
	case strings.HasPrefix(p, "/console/admin"):
		return "/console/admin"
	case strings.HasPrefix(p, "/console/feed"):
		return "/console/feed"
	}
	return "/console/"
}
