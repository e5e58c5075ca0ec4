package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// --feed-limit bounds a feed file sent to the API, and --console-form-limit
// the console's forms.
func TestServe_FormLimits(t *testing.T) {
	dir := initStore(t)
	base, stop := startRun(t, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "error",
		"--feed-limit", "2048", "--console-form-limit", "1024")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()

	c := remote.New(base)
	signInAdmin(t, c)
	file := "external_id,name,phone,unit,fraud_type,risk,warned_at\n" + strings.Repeat("X,甲,13800000000,4110,刷单返利,high,2026-01-01T00:00:00Z\n", 60)
	if _, err := c.ImportFeedCSV(context.Background(), []byte(file)); syncproto.ErrorCode(err) != syncproto.CodePayloadTooLarge {
		t.Fatalf("a feed file of %d bytes past --feed-limit 2048: %v", len(file), err)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(base+"/console/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console sign-in: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = browser.PostForm(base+"/console/warnings", url.Values{"csrf": {"x"}, "q": {strings.Repeat("x", 2048)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a form past --console-form-limit 1024: %d", resp.StatusCode)
	}
}
