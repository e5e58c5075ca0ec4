package provincetest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/nginxproc"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// password is every test user's password.
const password = "province-user-1"

// people of one city: its center, a township lead and a village cadre,
// in a county, township and village below its root.
type people struct {
	root, village string
	center, lead  string
	cadre         string
}

// load creates the city's units and users through the proxy, as its admin.
func (p people) load(t *testing.T, base string) {
	t.Helper()
	county, town := p.village[:6], p.village[:9]
	tree := &demo.Tree{
		Units: []syncproto.UnitInput{{Code: p.root}, {Code: county, Name: "县区" + county}, {Code: town, Name: "乡镇" + town}, {Code: p.village, Name: "村" + p.village}},
		Users: []syncproto.UserInput{
			{Username: p.center, Name: "中心" + p.root, Unit: p.root, Password: password},
			{Username: p.lead, Name: "镇长" + p.root, Unit: town, Password: password},
			{Username: p.cadre, Name: "村干部" + p.root, Unit: p.village, Password: password},
		},
	}
	servertest.Load(t, signIn(t, base, "admin", adminPassword), tree)
}

// signIn signs a user in through base with the protocol's client.
func signIn(t *testing.T, base, username, pw string) *remote.Client {
	t.Helper()
	c := remote.New(base)
	resp, err := c.Login(ctx(t), syncproto.LoginRequest{Username: username, Password: pw, DeviceID: uuid.NewString(), DeviceName: "province test", Platform: "test"})
	if err != nil {
		t.Fatalf("sign in %s at %s: %v", username, base, err)
	}
	c.SetToken(resp.AccessToken)
	return c
}

// phone opens the real SDK on base and signs the cadre in.
func phone(t *testing.T, base, username string) *clientsdk.Client {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	c, err := clientsdk.Open(t.TempDir(), clientsdk.Options{ServerURL: base, DeviceName: "province phone", Platform: "test", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx(t), username, password); err != nil {
		t.Fatalf("phone of %s at %s: %v", username, base, err)
	}
	return c
}

func mustSync(t *testing.T, c *clientsdk.Client) clientsdk.Report {
	t.Helper()
	rep, err := c.Sync(ctx(t))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// importCSV imports one warning for the village through the proxy, as a
// CSV file (the feed's own form), and returns its id.
func importCSV(t *testing.T, center *remote.Client, ext, village string) string {
	t.Helper()
	var csv bytes.Buffer
	if err := feed.WriteCSV(&csv, []syncproto.FeedWarning{servertest.FeedRow(ext, village, syncproto.RiskHigh, time.Now().Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	resp, err := center.ImportFeedCSV(ctx(t), csv.Bytes())
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("feed import through the proxy: %+v %v", resp, err)
	}
	return resp.Created[0].ID
}

// TestProvince: two cities, each its own fieldsyncd, behind one nginx
// configured by `fieldsyncd province nginx-config`.
func TestProvince(t *testing.T) {
	nginx := nginxproc.Find()
	if nginx == "" {
		t.Skip(nginxproc.Missing)
	}
	bin := servertest.BuildFieldsyncd(t)
	xuchang := startCity(t, bin, "4110", "许昌市")
	zhengzhou := startCity(t, bin, "4101", "郑州市")
	province := startNginx(t, nginx, bin, xuchang, zhengzhou)
	baseA, baseB := province+"/4110", province+"/4101"
	a := people{root: "4110", village: "411002001001", center: "center-xc", lead: "lead-xc", cadre: "cadre-xc"}
	b := people{root: "4101", village: "410102001001", center: "center-zz", lead: "lead-zz", cadre: "cadre-zz"}
	a.load(t, baseA)
	b.load(t, baseB)

	t.Run("IndexListsTheCities", func(t *testing.T) {
		resp, page := get(t, http.DefaultClient, province+"/")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`<a href="/4110/console/">许昌市</a>`, `<a href="/4101/console/">郑州市</a>`} {
			if !strings.Contains(page, want) {
				t.Errorf("the index page lacks %s:\n%s", want, page)
			}
		}
	})

	// A warning of each city comes in by the feed, through the proxy.
	idA := importCSV(t, signIn(t, baseA, a.center, password), "XC1", a.village)
	idB := importCSV(t, signIn(t, baseB, b.center, password), "ZZ1", b.village)

	// Each city's cadre syncs through the one address with the real SDK,
	// and records a visit; Xuchang's with a photo, which goes by tus.
	phoneA, phoneB := phone(t, baseA, a.cadre), phone(t, baseB, b.cadre)
	mustSync(t, phoneA)
	mustSync(t, phoneB)
	if w, ok := phoneA.Warning(idA); !ok || w.Status != syncproto.WarningAssigned {
		t.Fatalf("Xuchang's cadre holds %+v %v, want its warning assigned", w.Warning.ID, ok)
	}
	if _, ok := phoneB.Warning(idA); ok {
		t.Fatal("Zhengzhou's cadre holds Xuchang's warning")
	}
	photo, sum := writePhoto(t)
	if _, err := phoneA.RecordAttempt(idA, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Photos: []string{photo}}); err != nil {
		t.Fatal(err)
	}
	if _, err := phoneB.RecordAttempt(idB, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded}); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, phoneA); rep.Photos != 1 {
		t.Fatalf("Xuchang's sync %+v, want its photo sent", rep)
	}
	mustSync(t, phoneB)
	leadA := signIn(t, baseA, a.lead, password)
	data, err := leadA.GetBlob(ctx(t), sum)
	if want, _ := os.ReadFile(photo); err != nil || !bytes.Equal(data, want) {
		t.Fatalf("the lead reads the photo through the proxy: %d bytes, %v", len(data), err)
	}

	t.Run("TokenOfAnotherCityRefused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, baseB+"/v1/warnings", nil)
		req.Header.Set("Authorization", "Bearer "+leadA.Token())
		req.Header.Set("Accept", "application/json")
		resp, body := do(t, http.DefaultClient, req)
		var env struct {
			Error *syncproto.Error `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &env); resp.StatusCode != http.StatusUnauthorized || err != nil || env.Error == nil || env.Error.Code != syncproto.CodeUnauthorized {
			t.Fatalf("Xuchang's token at Zhengzhou: %d %s, want 401 unauthorized in the protocol's format", resp.StatusCode, body)
		}
	})

	t.Run("Consoles", func(t *testing.T) {
		approveInConsole(t, province, "/4110", a.lead, idA)
		approveInConsole(t, province, "/4101", b.lead, idB)
		mustSync(t, phoneA)
		mustSync(t, phoneB)
		if w, _ := phoneA.Warning(idA); w.Status != syncproto.WarningClosed {
			t.Errorf("Xuchang's warning is %s on the phone after the console's approval, want closed", w.Status)
		}
		if w, _ := phoneB.Warning(idB); w.Status != syncproto.WarningClosed {
			t.Errorf("Zhengzhou's warning is %s on the phone after the console's approval, want closed", w.Status)
		}
	})

	t.Run("OneCityDownTheOtherWorks", func(t *testing.T) {
		zhengzhou.proc.kill(t)
		idA2 := importCSV(t, signIn(t, baseA, a.center, password), "XC2", a.village)
		mustSync(t, phoneA)
		if _, err := phoneA.RecordAttempt(idA2, clientsdk.Attempt{Method: syncproto.MethodPhone, Reached: true, Outcome: syncproto.OutcomeDissuaded}); err != nil {
			t.Fatal(err)
		}
		if rep := mustSync(t, phoneA); rep.Pushed != 1 {
			t.Fatalf("Xuchang's sync with Zhengzhou down: %+v, want its attempt pushed", rep)
		}
		if resp, _ := get(t, http.DefaultClient, baseB+"/v1/healthz"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("Zhengzhou down: %d through the proxy, want 502", resp.StatusCode)
		}
	})
}

// writePhoto writes a small JPEG-looking file and returns its path and
// SHA-256.
func writePhoto(t *testing.T) (string, string) {
	t.Helper()
	data := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte("province"), 4000)...)
	path := filepath.Join(t.TempDir(), "visit.jpg")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return path, hex.EncodeToString(s[:])
}

var (
	linkAttr     = regexp.MustCompile(`(?:href|src|action|formaction)="([^"]*)"`)
	csrfField    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	versionField = regexp.MustCompile(`name="base_version" value="([0-9]+)"`)
)

// approveInConsole signs the lead in to the city's console under base,
// through the proxy, opens the warning from the list and approves it;
// every page's links stay under base.
func approveInConsole(t *testing.T, province, base, lead, id string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	checkLinks := func(where, page string) {
		for _, m := range linkAttr.FindAllStringSubmatch(page, -1) {
			if l := html.UnescapeString(m[1]); strings.HasPrefix(l, "/") && !strings.HasPrefix(l, base+"/") {
				t.Errorf("%s links outside %s: %s", where, base, l)
			}
		}
	}
	resp, page := get(t, browser, province+base+"/console/login")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s sign-in page: %d", base, resp.StatusCode)
	}
	checkLinks("the sign-in page", page)
	resp, _ = postForm(t, browser, province+base+"/console/login", url.Values{"username": {lead}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != base+"/console/" {
		t.Fatalf("%s sign-in: %d to %q", base, resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = get(t, browser, province+base+"/console/warnings?status=")
	checkLinks("the list", page)
	link := base + "/console/warnings/" + id
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="`+link+`"`) {
		t.Fatalf("%s list: %d, no link to %s", base, resp.StatusCode, link)
	}
	resp, page = get(t, browser, province+link)
	checkLinks("the warning", page)
	csrf, version := csrfField.FindStringSubmatch(page), versionField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || csrf == nil || version == nil || !strings.Contains(page, `value="approve"`) {
		t.Fatalf("%s warning page: %d, no approve form", base, resp.StatusCode)
	}
	resp, _ = postForm(t, browser, province+link, url.Values{"csrf": {csrf[1]}, "base_version": {version[1]}, "action": {"approve"}, "comment": {"同意办结"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), link) {
		t.Fatalf("%s approve: %d to %q", base, resp.StatusCode, resp.Header.Get("Location"))
	}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req.WithContext(ctx(t)))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
