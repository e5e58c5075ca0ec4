package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMessages_SayWhatIsWrong: an answer to bad input says what is wrong
// with it. A 300-byte password was answered "password is required", and a
// feed row warned in 1999 "warned_at must be a time in the past".
func TestMessages_SayWhatIsWrong(t *testing.T) {
	c := newCity(t, nil, nil)
	srv := c.srv
	login := func(edit func(*syncproto.LoginRequest)) *syncproto.Error {
		t.Helper()
		req := syncproto.LoginRequest{Username: "a1", Password: testPassword, DeviceID: uuid.NewString(), DeviceName: "x", Platform: "test"}
		edit(&req)
		r := send(t, srv.URL, rawReq{Path: "/v1/auth/login", ContentType: syncproto.JSON.MediaType(), Body: mustEncode(t, syncproto.JSON, req)})
		return wantError(t, r, http.StatusBadRequest, syncproto.CodeInvalidRequest)
	}
	for _, tc := range []struct {
		name, field, want string
		edit              func(*syncproto.LoginRequest)
	}{
		{"PasswordTooLong", "password", "password is longer than 256 bytes", func(r *syncproto.LoginRequest) { r.Password = strings.Repeat("p", 300) }},
		{"PasswordMissing", "password", "password is required", func(r *syncproto.LoginRequest) { r.Password = "" }},
		{"UsernameTooLong", "username", "username is longer than 64 bytes", func(r *syncproto.LoginRequest) { r.Username = strings.Repeat("u", 65) }},
		{"PlatformTooLong", "platform", "platform is longer than 50 bytes", func(r *syncproto.LoginRequest) { r.Platform = strings.Repeat("p", 51) }},
	} {
		t.Run("Login/"+tc.name, func(t *testing.T) {
			e := login(tc.edit)
			wantField(t, e, tc.field)
			if e.Message != tc.want {
				t.Fatalf("message %q, want %q", e.Message, tc.want)
			}
		})
	}

	t.Run("Feed/WarnedIn1999", func(t *testing.T) {
		row := servertest.FeedRow("OLD-1", unitVillA1, syncproto.RiskHigh, time.Date(1999, 6, 1, 8, 0, 0, 0, time.UTC))
		resp, err := c.dev["center1"].ImportFeed(context.Background(), []syncproto.FeedWarning{row})
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		if len(resp.Invalid) != 1 || len(resp.Created) != 0 {
			t.Fatalf("import answered %+v, want the row refused", resp)
		}
		if msg := resp.Invalid[0].Message; !strings.Contains(msg, "before 2000-01-01") || strings.Contains(msg, "in the past") {
			t.Fatalf("message %q does not say the date is before 2000", msg)
		}
	})
}
