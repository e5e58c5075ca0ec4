package console

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Every POST of the console is a form, and every form has a body limit
// that fits it, enforced before the first byte past it is read: the
// Content-Length is checked first, and the body is cut at the limit for a
// client that sends none.
const (
	// loginFormLimit bounds a sign-in. Its two fields are capped at 64
	// bytes (username) and 256 (password); percent-encoded, with their
	// names, that is under 1 KiB.
	loginFormLimit = 4 << 10
	// DefaultFormLimit bounds every other form but the feed upload. The
	// largest is an action on a warning with a comment of
	// syncproto.MaxCommentLen characters: up to 24 KiB percent-encoded.
	DefaultFormLimit = 64 << 10
	// csrfPartLimit bounds the csrf part of an upload; a token is 43 bytes.
	csrfPartLimit = 256
)

// removeTempFiles deletes what parsing a multipart form spilled to disk.
// net/http removes those files only for the request it made itself, and a
// middleware that replaces the request (for its context) hides the parsed
// form from it: without this a file would outlive the request and the
// server. No route of the console parses a multipart form today (the feed
// upload is read as a stream); this keeps it so if one ever does.
func removeTempFiles(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		defer func() {
			if f := ctx.Request().MultipartForm; f != nil {
				_ = f.RemoveAll()
			}
		}()
		return next(ctx)
	}
}

// sameOrigin refuses a form posted from another site, sign-in included:
// the sign-in has no session and so no CSRF token, and a cross-site post
// of it would sign the browser in as whoever the other site chose (login
// CSRF). Browsers say where a request comes from in Sec-Fetch-Site (all
// since 2023) or, before that, in Origin, which must then name the Host
// the server sees; a request with neither is not from a browser's form,
// and is left to the CSRF token. net/http's CrossOriginProtection makes
// the check.
func sameOrigin() echo.MiddlewareFunc {
	check := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ctx echo.Context) error {
			if check.Check(ctx.Request()) != nil {
				return syncproto.Errorf(syncproto.CodeForbidden,
					"控制台只接受从本站页面提交的表单；请打开控制台页面后重新操作。").With("field", "Origin")
			}
			return next(ctx)
		}
	}
}

// noBodyOnReads drops the body of a GET or HEAD unread: a page reads its
// parameters from the URL, and a GET's multipart body would otherwise be
// parsed (and spilled to disk) by the first FormValue.
func noBodyOnReads(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		if r := ctx.Request(); r.Method == http.MethodGet || r.Method == http.MethodHead {
			r.Body, r.ContentLength = http.NoBody, 0
		}
		return next(ctx)
	}
}

// urlencodedForm reads a form of at most limit bytes before the handler
// runs. Any other body is refused unread: only the feed upload carries a
// file, and reading a multipart body would spill it to disk.
func urlencodedForm(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ctx echo.Context) error {
			if err := readForm(ctx, limit); err != nil {
				return err
			}
			return next(ctx)
		}
	}
}

// readForm parses the request's URL-encoded body, at most limit bytes.
func readForm(ctx echo.Context, limit int64) error {
	r := ctx.Request()
	if r.ContentLength > limit {
		return formTooLarge(limit)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationForm && !(mt == "" && r.ContentLength == 0) {
		return syncproto.InvalidField("Content-Type",
			"控制台的表单以 application/x-www-form-urlencoded 提交；只有导入预警的表单可以带文件。")
	}
	// The writer underneath, so that net/http closes the connection
	// rather than read on past the limit.
	r.Body = http.MaxBytesReader(ctx.Response().Writer, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return formTooLarge(limit)
		}
		return syncproto.InvalidField("body", "表单无法读取，请返回页面刷新后重试。")
	}
	return nil
}

// formTooLarge is the answer to a form past its limit.
func formTooLarge(limit int64) *syncproto.Error {
	return syncproto.Errorf(syncproto.CodePayloadTooLarge, "表单内容超过了 %s 的上限，没有处理。", sizeText(limit)).With("limit", limit)
}

// requireCSRF refuses a form without the session's CSRF token. The token
// is read from the body only, never from the URL.
func requireCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ctx echo.Context) error {
		sess := ctx.Get(sessionKey).(*session)
		if !sess.checkCSRF(ctx.Request().PostForm.Get("csrf")) {
			return csrfRefused()
		}
		return next(ctx)
	}
}

// csrfRefused is the answer to a form without a valid CSRF token: a page
// left open across a sign-out, or a form from another site.
func csrfRefused() *syncproto.Error {
	return syncproto.Errorf(syncproto.CodeForbidden, "表单已过期，请返回页面刷新后重试。").With("field", "csrf")
}

// readCSRFPart reads the first part of a multipart form, which must be the
// csrf field: the feed page puts it before the file, and browsers send the
// fields in the page's order. Nothing after it is read.
func readCSRFPart(mr *multipart.Reader, limit int64) (string, error) {
	part, err := mr.NextPart()
	if err != nil {
		return "", multipartError(err, limit, csrfRefused())
	}
	defer part.Close()
	if part.FormName() != "csrf" || part.FileName() != "" {
		return "", csrfRefused()
	}
	token, err := io.ReadAll(io.LimitReader(part, csrfPartLimit+1))
	if err != nil {
		return "", multipartError(err, limit, csrfRefused())
	}
	if len(token) > csrfPartLimit {
		return "", csrfRefused()
	}
	return string(token), nil
}

// multipartError is the answer to a multipart body that could not be read:
// too large past the body's limit, otherwise orElse.
func multipartError(err error, limit int64, orElse error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return formTooLarge(limit)
	}
	return orElse
}

// sizeText writes a byte count as a person reads it: 4 KiB, 16 MiB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d 字节", n)
}
