// Package console is the web console for township leads and the center,
// served by fieldsyncd itself in Simplified Chinese with every asset
// embedded, so it works on a network without internet. It signs in with
// the same accounts as the phones, keeps a session per browser (a cookie
// that is HttpOnly, SameSite=Strict, and Secure behind TLS), refuses forms
// posted from other sites and checks a CSRF token on every signed-in form,
// bounds every form's body, and reads and acts through the same service
// layer as the API, with the same scope rules.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the session cookie.
const CookieName = "fieldsync_session"

// Config tunes the console.
type Config struct {
	// Now is the clock; the app's store clock by default.
	Now func() time.Time
	// FormLimit bounds the body of every signed-in form but the feed
	// upload; DefaultFormLimit when 0.
	FormLimit int64
	// FeedLimit bounds a feed file uploaded in the console, as the API's
	// bounds one sent to POST /v1/feed/warnings; feed.DefaultLimit when 0.
	FeedLimit int64
	// BasePath is the server's base path (httpapi.Config.BasePath, such
	// as "/4110"), which every link, form and cookie of the pages
	// carries; "" at the root. The routes stay at /console: the server's
	// edge takes the base off requests and puts it on redirects.
	BasePath string
}

// Console serves the pages.
type Console struct {
	app      *app.App
	sessions *sessions
	pages    map[string]*template.Template
	// wallPage is the dashboard on a wall screen, a page of its own (no
	// layout: no navigation).
	wallPage *template.Template
	now      func() time.Time
	// formLimit and feedLimit are Config's, defaults filled in.
	formLimit int64
	feedLimit int64
	// base is Config.BasePath.
	base string
}

// New builds the console on a.
// Sessions of an earlier run of the server are ended in the store: their
// browsers' cookies named sessions this console does not hold.
func New(a *app.App, cfg Config) (*Console, error) {
	if cfg.Now == nil {
		cfg.Now = a.Now
	}
	if cfg.FormLimit <= 0 {
		cfg.FormLimit = DefaultFormLimit
	}
	if cfg.FeedLimit <= 0 {
		cfg.FeedLimit = feed.DefaultLimit
	}
	c := &Console{app: a, pages: map[string]*template.Template{}, now: cfg.Now,
		formLimit: cfg.FormLimit, feedLimit: cfg.FeedLimit, base: cfg.BasePath}
	// path is the one way a page names a page of the console: every
	// href, src and form action in the templates goes through it.
	paths := template.FuncMap{"path": c.path}
	idle, lifetime := a.ConsoleLimits()
	c.sessions = newSessions(idle, lifetime, cfg.Now, c.signOutIdle)
	if err := a.EndConsoleSessions(context.Background()); err != nil {
		return nil, fmt.Errorf("end the console sessions of the last run: %w", err)
	}
	for _, page := range []string{"login", "dashboard", "warnings", "warning", "flags", "feed", "admin", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).Funcs(paths).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		c.pages[page] = t
	}
	wall, err := template.New("wall.html").Funcs(funcs).Funcs(paths).ParseFS(templateFS, "templates/wall.html")
	if err != nil {
		return nil, err
	}
	c.wallPage = wall
	return c, nil
}

// path is the address a browser uses for the console's page p (written
// from the root, "/console/..."): p under the server's base path.
func (c *Console) path(p string) string { return c.base + p }

// cookiePath is the session cookie's Path: the console's pages, under the
// base path, so the cookie of one city's console is never sent to
// another's behind the same address.
func (c *Console) cookiePath() string { return c.path("/console") }

// Register adds the console's routes under /console, and sends a browser
// that opens the server's bare address there. Each signed-in route
// checks, in this order, the session cookie, the form (its size, then its
// CSRF token) and only then the session's token, device and user: a form
// that is too big, or not from the console's own page, is refused before
// anything of it is kept or the session's token is refreshed.
func (c *Console) Register(e *echo.Echo) {
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/", func(ctx echo.Context) error { return ctx.Redirect(http.StatusFound, "/console/") })
	g := e.Group("/console", securityHeaders, c.htmlErrors, sameOrigin(), removeTempFiles, noBodyOnReads)
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix("/console/static/", http.FileServer(http.FS(static)))))
	g.GET("/login", c.loginPage)
	g.POST("/login", c.login, urlencodedForm(loginFormLimit))
	page := func(path string, h echo.HandlerFunc) {
		g.GET(path, h, c.requireSession, c.requirePrincipal)
	}
	form := func(path string, h echo.HandlerFunc) {
		g.POST(path, h, c.requireSession, urlencodedForm(c.formLimit), requireCSRF, c.requirePrincipal)
	}
	page("", c.dashboard)
	page("/", c.dashboard)
	page("/wall", c.wall)
	form("/logout", c.logout)
	page("/warnings", c.warnings)
	form("/warnings", c.searchWarnings)
	page("/warnings/:id", c.warning)
	form("/warnings/:id", c.act)
	page("/flags", c.flags)
	page("/photos/:sha256", c.photo)
	page("/feed", c.feedPage)
	g.POST("/feed", c.uploadFeed, c.requireSession, c.feedForm, c.requirePrincipal)
	page("/admin", c.admin)
	form("/admin/search", c.searchAccounts)
	form("/admin/users", c.saveUser)
	form("/admin/devices", c.revoke)
	form("/export/warnings.csv", c.exportList)
	page("/export/feedback.csv", c.exportFeedback)
}

// securityHeaders keep the pages to their own assets and frames.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		h := ctx.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(ctx)
	}
}

func (c *Console) render(ctx echo.Context, status int, page string, data map[string]any) error {
	var b strings.Builder
	if err := c.pages[page].Execute(&b, data); err != nil {
		return err
	}
	return ctx.HTML(status, b.String())
}

func (c *Console) loginPage(ctx echo.Context) error {
	if sess := c.current(ctx); sess != nil {
		return ctx.Redirect(http.StatusSeeOther, "/console/")
	}
	return c.render(ctx, http.StatusOK, "login", map[string]any{})
}

// login signs in with the same accounts as the phones. The browser's
// session is a console session, not a phone (app.ConsoleLogin): it is
// never refused for the phone cap, and ends on sign-out, idle or at the
// end of its lifetime.
func (c *Console) login(ctx echo.Context) error {
	c.sessions.sweep()
	username, password := ctx.FormValue("username"), ctx.FormValue("password")
	resp, err := c.app.ConsoleLogin(ctx.Request().Context(), username, password)
	if err != nil {
		if perr := syncproto.AsError(err); perr != nil && perr.Code == syncproto.CodeRateLimited {
			return c.tooManySignIns(ctx, perr, username)
		}
		msg, status := "登录失败，请稍后再试。", http.StatusUnauthorized
		switch syncproto.ErrorCode(err) {
		case syncproto.CodeUnauthorized, syncproto.CodeInvalidRequest:
			msg = "用户名或密码错误。"
		case syncproto.CodeForbidden:
			msg, status = "控制台供乡镇、县区和市中心使用；村干部请使用手机应用。", http.StatusForbidden
		}
		return c.render(ctx, status, "login", map[string]any{"Error": msg, "Username": username})
	}
	sess := &session{user: resp.User, deviceID: resp.DeviceID, access: resp.AccessToken, refresh: resp.RefreshToken,
		expires: c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)}
	c.sessions.add(sess)
	ctx.SetCookie(&http.Cookie{
		Name: CookieName, Value: sess.id, Path: c.cookiePath(), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: isTLS(ctx.Request()),
	})
	return ctx.Redirect(http.StatusSeeOther, "/console/")
}

// tooManySignIns answers a sign-in refused by the lockout or the limit per
// address: it says when to try again, and, like the API, nothing of
// whether the account exists.
func (c *Console) tooManySignIns(ctx echo.Context, perr *syncproto.Error, username string) error {
	d, _ := perr.DetailSeconds("retry_after")
	secs := max(int(d/time.Second), 1)
	wait := fmt.Sprintf("%d 秒", secs)
	if secs >= 120 {
		wait = fmt.Sprintf("%d 分钟", (secs+59)/60)
	}
	ctx.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	msg := "登录失败次数过多，请 " + wait + "后再试。如忘记密码，请联系管理员重置。"
	return c.render(ctx, http.StatusTooManyRequests, "login", map[string]any{"Error": msg, "Username": username})
}

// signOutIdle ends, in the store, the session of a browser forgotten for
// being idle or past its lifetime.
func (c *Console) signOutIdle(sess *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.app.Logout(ctx, app.Principal{Actor: syncproto.Actor{UserID: sess.user.ID, DeviceID: sess.deviceID}})
}

// isTLS reports whether the browser reached us over TLS, directly or
// through a proxy that says so.
func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (c *Console) current(ctx echo.Context) *session {
	cookie, err := ctx.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return c.sessions.get(cookie.Value)
}

const sessionKey = "console-session"

// requireSession sends a browser without a live session to the login
// page. It reads nothing of the body.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		sess := c.current(ctx)
		if sess == nil {
			return ctx.Redirect(http.StatusSeeOther, "/console/login")
		}
		ctx.Set(sessionKey, sess)
		return next(ctx)
	}
}

// requirePrincipal checks the session's device and user as every API
// request does; a session whose device or user no longer may is ended,
// in memory and in the store.
func (c *Console) requirePrincipal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		sess := ctx.Get(sessionKey).(*session)
		p, err := c.principal(ctx.Request().Context(), sess)
		if err != nil {
			c.sessions.remove(sess.id)
			c.signOutIdle(sess)
			return ctx.Redirect(http.StatusSeeOther, "/console/login")
		}
		ctx.Set("principal", p)
		return next(ctx)
	}
}

// principal checks the session's token (refreshing it when it has
// expired) and its device and user, as the API does.
func (c *Console) principal(ctx context.Context, sess *session) (app.Principal, error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !c.now().Before(sess.expires.Add(-30 * time.Second)) {
		resp, err := c.app.Refresh(ctx, &syncproto.RefreshRequest{RefreshToken: sess.refresh, DeviceID: sess.deviceID})
		if err != nil {
			return app.Principal{}, err
		}
		sess.access, sess.refresh, sess.user = resp.AccessToken, resp.RefreshToken, resp.User
		sess.expires = c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)
	}
	p, err := c.app.Authenticate(sess.access)
	if err != nil {
		return app.Principal{}, err
	}
	if !syncproto.IsManager(p.Actor.Role) {
		return app.Principal{}, errors.New("not a console user")
	}
	return p, nil
}

func (c *Console) logout(ctx echo.Context) error {
	sess := ctx.Get(sessionKey).(*session)
	p := ctx.Get("principal").(app.Principal)
	_ = c.app.Logout(ctx.Request().Context(), p)
	c.sessions.remove(sess.id)
	ctx.SetCookie(&http.Cookie{Name: CookieName, Value: "", Path: c.cookiePath(), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(ctx.Request())})
	return ctx.Redirect(http.StatusSeeOther, "/console/login")
}
