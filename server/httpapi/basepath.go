package httpapi

import (
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// CleanBasePath checks a base path such as "/4110": a slash, then path
// segments of letters, digits and . _ ~ -, no slash at the end. "" and
// "/" are no base path (the server at the root), returned as "".
func CleanBasePath(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return "", errors.New("want a path such as /4110: a leading slash and none at the end")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", errors.New("want a path such as /4110, without empty, . or .. segments")
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._~-", r)) {
				return "", errors.New("want a path such as /4110 of letters, digits and . _ ~ -")
			}
		}
	}
	return p, nil
}

// underBase serves the whole server under base (a province's reverse
// proxy passes /4110/... to the city's process unchanged). Every part of
// the server is written as if it stood at the root: this one edge takes
// base off each request's path before routing, and puts it back on each
// Location the server answers with (the console's redirects, a tus
// upload's address), so neither the API's routes nor the uploads know of
// it. What a body carries (the console's links) and a cookie's Path are
// the console's to build (console.Config.BasePath). A request outside
// base is not ours: 404 in the protocol's format.
func underBase(base string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			rest, ok := strings.CutPrefix(r.URL.Path, base)
			if !ok || rest != "" && !strings.HasPrefix(rest, "/") {
				return syncproto.Errorf(syncproto.CodeNotFound, "no such endpoint: this server answers under %s/", base)
			}
			if rest == "" {
				rest = "/"
			}
			r.URL.Path = rest
			if r.URL.RawPath != "" {
				// An escaped path keeps its escapes; base itself has none
				// to escape (CleanBasePath), so it is a plain prefix.
				r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, base)
				if r.URL.RawPath == "" {
					r.URL.RawPath = "/"
				}
			}
			res := c.Response()
			res.Before(func() {
				h := res.Header()
				if loc := h.Get(echo.HeaderLocation); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
					h.Set(echo.HeaderLocation, base+loc)
				}
			})
			return next(c)
		}
	}
}
