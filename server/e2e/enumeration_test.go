package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestEnumeration_UsernamesLookAlike replays the enumeration: after a
// wrong password, /metrics counted reason="bad_password" for a real
// username and reason="unknown_user" for an unknown one. Sign-ins of a
// real username with a wrong password, of an unknown username, and of a
// disabled account (with its right password) now get the same answers, one
// after the other up to the lockout and past it, and move the same
// counters by the same amounts.
func TestEnumeration_UsernamesLookAlike(t *testing.T) {
	m := metrics.New(metrics.Options{})
	srv := servertest.Start(t, servertest.Options{Metrics: m, MetricsToken: scrapeToken})
	srv.LoadCity(t)
	if _, err := srv.Admin(t).UpsertUsers(context.Background(), []syncproto.UserInput{
		{Username: "gone1", Name: "离职干部", Unit: unitVillA1, Password: testPassword, Active: new(false)},
	}); err != nil {
		t.Fatal(err)
	}

	// Past the lockout threshold, so the lockout's answers are compared too.
	tries := app.DefaultLockoutThreshold + 2
	type trace struct {
		answers []string
		counted map[string]float64
	}
	signIns := func(username, password string) trace {
		t.Helper()
		before, _ := scrape(t, srv)
		var tr trace
		for range tries {
			body := syncproto.LoginRequest{Username: username, Password: password, DeviceID: uuid.NewString(), DeviceName: "x", Platform: "test"}
			r := send(t, srv.URL, rawReq{Path: "/v1/auth/login", ContentType: syncproto.JSON.MediaType(), Body: mustEncode(t, syncproto.JSON, body)})
			var env syncproto.ErrorEnvelope
			r.decode(t, &env)
			if env.Error == nil {
				t.Fatalf("sign-in of %s: %d without an error", username, r.Status)
			}
			tr.answers = append(tr.answers, fmt.Sprintf("%d %s %q", r.Status, env.Error.Code, env.Error.Message))
		}
		after, _ := scrape(t, srv)
		tr.counted = authCounters(before, after)
		return tr
	}
	real := signIns("a1", "not-the-password")
	for _, other := range []struct{ what, username, password string }{
		{"UnknownUsername", "nobody-" + uuid.NewString()[:8], "not-the-password"},
		{"DisabledAccountRightPassword", "gone1", testPassword},
	} {
		t.Run(other.what, func(t *testing.T) {
			got := signIns(other.username, other.password)
			if strings.Join(got.answers, "\n") != strings.Join(real.answers, "\n") {
				t.Errorf("answers differ from a real username's:\nreal:\n%s\n%s:\n%s", strings.Join(real.answers, "\n"), other.what, strings.Join(got.answers, "\n"))
			}
			if fmt.Sprint(sorted(got.counted)) != fmt.Sprint(sorted(real.counted)) {
				t.Errorf("/metrics moved differently from a real username's:\nreal: %v\n%s: %v", sorted(real.counted), other.what, sorted(got.counted))
			}
		})
	}
	if real.counted[`fieldsync_auth_failures_total{reason="`+metrics.AuthBadCredentials+`"}`] == 0 {
		t.Errorf("wrong passwords not counted as %s: %v", metrics.AuthBadCredentials, sorted(real.counted))
	}
	if strings.Count(strings.Join(real.answers, "\n"), fmt.Sprint(http.StatusTooManyRequests)) == 0 {
		t.Errorf("the lockout never answered: %v", real.answers)
	}
}

// authCounters is how much each series of the authentication failures and
// of the sign-in requests moved between two scrapes, by series.
func authCounters(before, after exposition) map[string]float64 {
	moved := map[string]float64{}
	for _, name := range []string{"fieldsync_auth_failures_total", "fieldsync_http_requests_total"} {
		f := after[name]
		if f == nil {
			continue
		}
		for _, s := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range s.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if name == "fieldsync_http_requests_total" && ls["route"] != "/v1/auth/login" {
				continue
			}
			if d := s.GetCounter().GetValue() - before.value(name, ls); d != 0 {
				moved[name+seriesLabels(s.GetLabel())] = d
			}
		}
	}
	return moved
}

func seriesLabels(ls []*dto.LabelPair) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func sorted(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %v", k, v))
	}
	sort.Strings(out)
	return out
}
