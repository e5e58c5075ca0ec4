package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// postFrom posts form with the headers a browser adds to say where the
// form came from.
func postFrom(t *testing.T, b *browser, path string, form url.Values, origin map[string]string) rawAnswer {
	t.Helper()
	resp, body := b.do("POST", path, form, origin)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// sessionCookie reports whether the answer sets the console's session.
func sessionCookie(a rawAnswer) bool {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == console.CookieName && c.Value != "" {
			return true
		}
	}
	return false
}

// A page of another site cannot post the console's sign-in form: it would
// sign the victim's browser in as the attacker (login CSRF), and every
// warning the victim then handled would be recorded in the attacker's name.
// The refusal happens before the password is checked, so it neither stores
// a device nor counts as a failed sign-in.
func TestConsole_LoginFromAnotherSite(t *testing.T) {
	srv := setup(t, servertest.Options{})
	host := strings.TrimPrefix(srv.URL, "http://")
	before := devicesOf(t, srv, "leadA")
	creds := url.Values{"username": {"leadA"}, "password": {servertest.CityPassword}}
	wrong := url.Values{"username": {"leadA"}, "password": {"wrong-password"}}

	for name, h := range map[string]map[string]string{
		"CrossSite":           {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"SameSiteOtherOrigin": {"Sec-Fetch-Site": "same-site", "Origin": "http://other." + host},
		"OldBrowser":          {"Origin": "https://evil.example"},
		"OpaqueOrigin":        {"Origin": "null"},
	} {
		t.Run(name, func(t *testing.T) {
			a := postFrom(t, newBrowser(t, srv.URL), "/console/login", creds, h)
			e := wantEnvelope(t, a, http.StatusForbidden, syncproto.CodeForbidden)
			if e.Details["field"] != "Origin" {
				t.Errorf("the error does not name Origin: %+v", e)
			}
			if sessionCookie(a) {
				t.Fatal("a cross-site sign-in set a session cookie")
			}
		})
	}
	// Enough cross-site guesses to lock the username, were they counted:
	// the sign-ins below would then be refused.
	for range 10 {
		postFrom(t, newBrowser(t, srv.URL), "/console/login", wrong, map[string]string{"Sec-Fetch-Site": "cross-site"})
	}
	if after := devicesOf(t, srv, "leadA"); after != before {
		t.Fatalf("cross-site sign-ins stored devices: %d before, %d after", before, after)
	}

	for name, h := range map[string]map[string]string{
		"SameOrigin":         {"Sec-Fetch-Site": "same-origin", "Origin": srv.URL},
		"TypedByTheUser":     {"Sec-Fetch-Site": "none"},
		"OldBrowserSameHost": {"Origin": srv.URL},
		"NotABrowser":        nil,
	} {
		t.Run(name, func(t *testing.T) {
			a := postFrom(t, newBrowser(t, srv.URL), "/console/login", creds, h)
			if a.status != http.StatusSeeOther || !sessionCookie(a) {
				t.Fatalf("sign-in: %d", a.status)
			}
		})
	}
}

// Signed-in forms carry a CSRF token; a post from another site is refused
// even before the token is looked at.
func TestConsole_FormFromAnotherSite(t *testing.T) {
	srv := setup(t, servertest.Options{})
	lead, csrf := signedIn(t, srv, "leadA")
	seq := srv.LastSeq(t)
	a := postFrom(t, lead, "/console/logout", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	wantEnvelope(t, a, http.StatusForbidden, syncproto.CodeForbidden)
	if resp, _ := lead.do("GET", "/console/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a cross-site logout ended the session: %d", resp.StatusCode)
	}
	if srv.LastSeq(t) != seq {
		t.Fatal("a cross-site form changed the store")
	}
}
