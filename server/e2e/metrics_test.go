package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

const scrapeToken = "scrape-token-0123456789"

// scrape reads /metrics over HTTP with the scrape token and parses it.
func scrape(t *testing.T, srv *servertest.Server) (exposition, string) {
	t.Helper()
	r := send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/metrics", Token: scrapeToken})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, clip(r.Body))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families, string(r.Body)
}

// exposition is a parsed scrape, by metric name.
type exposition map[string]*dto.MetricFamily

// find returns the series of name whose labels include want, or nil.
func (e exposition) find(name string, want map[string]string) *dto.Metric {
	f := e[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; 0 for a
// series not there yet.
func (e exposition) value(name string, labels map[string]string) float64 {
	m := e.find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

type labels = map[string]string

func TestMetrics_CountTraffic(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	srv := servertest.Start(t, servertest.Options{Metrics: m, MetricsToken: scrapeToken})
	userIDs := srv.LoadCity(t)
	before, _ := scrape(t, srv)

	// Authentication failures: a wrong password, an unknown user, a push
	// without a token and one with a forged token.
	wrongDevice, unknownDevice := uuid.NewString(), uuid.NewString()
	if _, err := srv.LoginDevice("a1", "not-the-password", wrongDevice); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := srv.LoginDevice("nobody-here", testPassword, unknownDevice); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("login of an unknown user: %v", err)
	}
	wantError(t, send(t, srv.URL, rawReq{Path: "/v1/sync/push", ContentType: syncproto.MediaJSON, Body: []byte(`{}`)}), 401, syncproto.CodeUnauthorized)
	wantError(t, send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: "forged.token.value", ContentType: syncproto.MediaJSON, Body: []byte(`{}`)}), 401, syncproto.CodeUnauthorized)

	// The feed: two new warnings for village A1 (one cadre: assigned at
	// once), then one of them again and an invalid row.
	center := srv.Login(t, "center1", testPassword)
	now := time.Now().UTC().Add(-time.Hour)
	rows := []syncproto.FeedWarning{servertest.FeedRow("M-1", unitVillA1, syncproto.RiskHigh, now), servertest.FeedRow("M-2", unitVillA1, syncproto.RiskLow, now)}
	created, err := center.ImportFeed(ctx, rows)
	if err != nil || len(created.Created) != 2 {
		t.Fatalf("import: %+v %v", created, err)
	}
	bad := servertest.FeedRow("M-3", unitVillA1, "extreme", now)
	again, err := center.ImportFeed(ctx, []syncproto.FeedWarning{rows[0], bad})
	if err != nil || len(again.Duplicates) != 1 || len(again.Invalid) != 1 {
		t.Fatalf("second import: %+v %v", again, err)
	}

	// The cadre pulls, then pushes an applied op and a rejected one (sent
	// out of client_seq order), replays the push, and reuses a seq.
	a1 := srv.Login(t, "a1", testPassword)
	changes, pulled := pullAll(t, a1, "", 0)
	pulledChanges := len(pulled.Changes)
	warningID := created.Created[0].ID
	w := warningOf(t, changes, warningID)
	recorded := op(a1, syncproto.OpRecorded, warningID, w.Version, recordBody(syncproto.OutcomeDissuaded, true))
	escalated := op(a1, syncproto.OpEscalated, uuid.NewString(), 0, syncproto.OpBody{Reason: "不在辖区"})
	first := push(t, a1, escalated, recorded)
	if first.Results[0].Status != syncproto.StatusApplied || first.Results[1].Status != syncproto.StatusRejected || first.Results[1].Code != syncproto.CodeForbidden {
		t.Fatalf("first push: %+v", first.Results)
	}
	replay := push(t, a1, recorded, escalated)
	for _, r := range replay.Results {
		if r.Status != syncproto.StatusDuplicate {
			t.Fatalf("replay: %+v", replay.Results)
		}
	}
	reused := op(a1, syncproto.OpRecorded, warningID, w.Version, recordBody(syncproto.OutcomeDissuaded, true))
	reused.ClientSeq = recorded.ClientSeq
	if r := push(t, a1, reused).Results[0]; r.Status != syncproto.StatusRejected || r.Code != syncproto.CodeSeqReused {
		t.Fatalf("reused seq: %+v", r)
	}
	_, again2 := pullAll(t, a1, pulled.Cursor, 0)
	pulledChanges += len(again2.Changes)

	// A lead pulls too: two devices synced. The center and the admin only
	// imported and administered.
	lead := srv.Login(t, "leadA", testPassword)
	_, leadPull := pullAll(t, lead, "", 0)
	pulledChanges += len(leadPull.Changes)

	// A refresh whose answer was lost, retried with the same token: a
	// grace retry, not a failure. The token coming back once its
	// successor was used ends the chain: counted as reuse.
	refresh := syncproto.RefreshRequest{RefreshToken: a1.Login.RefreshToken, DeviceID: a1.ID}
	if _, err := srv.Client().Refresh(ctx, refresh); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	retry, err := srv.Client().Refresh(ctx, refresh)
	if err != nil {
		t.Fatalf("refresh retried in the grace window: %v", err)
	}
	if _, err := srv.Client().Refresh(ctx, syncproto.RefreshRequest{RefreshToken: retry.RefreshToken, DeviceID: a1.ID}); err != nil {
		t.Fatalf("refresh with the retry's token: %v", err)
	}
	if _, err := srv.Client().Refresh(ctx, refresh); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("refresh reuse: %v", err)
	}

	after, text := scrape(t, srv)
	delta := func(name string, l labels) float64 { return after.value(name, l) - before.value(name, l) }
	wantDelta := func(name string, l labels, want float64) {
		t.Helper()
		if got := delta(name, l); got != want {
			t.Errorf("%s%v moved by %v, want %v", name, l, got, want)
		}
	}

	// A wrong password and an unknown username: one reason for both.
	wantDelta("fieldsync_auth_failures_total", labels{"reason": metrics.AuthBadCredentials}, 2)
	wantDelta("fieldsync_auth_failures_total", labels{"reason": metrics.AuthNoToken}, 1)
	wantDelta("fieldsync_auth_failures_total", labels{"reason": metrics.AuthBadToken}, 1)
	wantDelta("fieldsync_auth_failures_total", labels{"reason": metrics.AuthRefreshReused}, 1)
	wantDelta("fieldsync_auth_failures_total", labels{"reason": metrics.AuthRefreshInvalid}, 0)
	wantDelta("fieldsync_refresh_grace_total", nil, 1)

	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpRecorded, "outcome": "applied", "code": ""}, 1)
	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpEscalated, "outcome": "rejected", "code": syncproto.CodeForbidden}, 1)
	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpRecorded, "outcome": "duplicate", "code": ""}, 1)
	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpEscalated, "outcome": "duplicate", "code": ""}, 1)
	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpRecorded, "outcome": "rejected", "code": syncproto.CodeSeqReused}, 1)
	wantDelta("fieldsync_ops_total", labels{"type": syncproto.OpEscalated, "outcome": "applied", "code": ""}, 0)
	wantDelta("fieldsync_push_ops", nil, 3)

	wantDelta("fieldsync_feed_rows_total", labels{"result": "created"}, 2)
	wantDelta("fieldsync_feed_rows_total", labels{"result": "duplicate"}, 1)
	wantDelta("fieldsync_feed_rows_total", labels{"result": "invalid"}, 1)
	wantDelta("fieldsync_pull_changes_total", nil, float64(pulledChanges))
	if pulledChanges < 3 {
		t.Errorf("only %d changes pulled; the test meant more", pulledChanges)
	}

	push200 := labels{"route": "/v1/sync/push", "method": "POST", "status": "200"}
	wantDelta("fieldsync_http_requests_total", push200, 3)
	wantDelta("fieldsync_http_request_duration_seconds", push200, 3)
	wantDelta("fieldsync_http_requests_total", labels{"route": "/v1/sync/push", "method": "POST", "status": "401"}, 2)
	wantDelta("fieldsync_http_requests_total", labels{"route": "/v1/auth/login", "method": "POST", "status": "401"}, 2)
	wantDelta("fieldsync_http_requests_total", labels{"route": "/v1/sync/pull", "method": "POST", "status": "200"}, 3)
	wantDelta("fieldsync_http_request_duration_seconds", labels{"route": "/v1/sync/pull", "method": "POST", "status": "200"}, 3)
	if h := after.find("fieldsync_http_request_duration_seconds", push200).GetHistogram(); h.GetSampleSum() <= 0 || len(h.GetBucket()) != 14 { // 13 and +Inf
		t.Errorf("push latency histogram: sum %v, %d buckets", h.GetSampleSum(), len(h.GetBucket()))
	}

	// Every write above went through a group commit: logins, imports,
	// pushes, refreshes.
	if n := delta("fieldsync_store_commit_requests", nil); n < 8 {
		t.Errorf("commit batches moved by %v, want at least 8", n)
	}
	if n := delta("fieldsync_store_commit_duration_seconds", nil); n < 1 {
		t.Errorf("commit times moved by %v", n)
	}
	wantDelta("fieldsync_store_commit_failures_total", nil, 0)
	if size := after.value("fieldsync_store_size_bytes", nil); size <= 0 {
		t.Errorf("store size %v", size)
	}
	if seq, want := after.value("fieldsync_store_log_seq", nil), float64(srv.LastSeq(t)); seq != want || seq < 4 {
		t.Errorf("log seq %v, the store says %v", seq, want)
	}
	for _, window := range []string{"1h", "24h"} {
		if n := after.value("fieldsync_active_devices", labels{"window": window}); n != 2 {
			t.Errorf("active devices in %s: %v, want 2", window, n)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if after[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	for name, f := range after {
		if strings.HasPrefix(name, "fieldsync_") && f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	// Nothing that names a person, a device or a warning reaches the
	// exposition: not in labels, not anywhere in the text.
	secrets := []string{a1.ID, center.ID, lead.ID, wrongDevice, unknownDevice, warningID, created.Created[1].ID,
		recorded.ID, escalated.ID, escalated.WarningID, "M-1", "M-2", "M-3", "nobody-here", "not-the-password",
		a1.Login.AccessToken, a1.Login.RefreshToken, scrapeToken, testPassword, servertest.AdminPassword}
	for _, u := range servertest.CityUsers {
		secrets = append(secrets, userIDs[u.Username], u.Name)
		if len(u.Username) >= 5 {
			secrets = append(secrets, u.Username)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("the exposition holds %q", s)
		}
	}
	short := map[string]bool{}
	for _, u := range servertest.CityUsers {
		short[u.Username] = true
	}
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if short[l.GetValue()] {
					t.Errorf("%s has label %s=%q, a username", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestMetrics_Access(t *testing.T) {
	t.Run("WrongToken", func(t *testing.T) {
		m := metrics.New(metrics.Options{})
		srv := servertest.Start(t, servertest.Options{Metrics: m, MetricsToken: scrapeToken})
		get := rawReq{Method: http.MethodGet, Path: "/metrics"}
		r := send(t, srv.URL, get)
		wantError(t, r, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		if strings.Contains(string(r.Body), "fieldsync_") {
			t.Fatalf("a scrape without a token got metrics: %s", clip(r.Body))
		}
		get.Token = scrapeToken + "x"
		wantError(t, send(t, srv.URL, get), http.StatusUnauthorized, syncproto.CodeUnauthorized)
		get.Token, get.Header = "", map[string]string{"Authorization": scrapeToken}
		wantError(t, send(t, srv.URL, get), http.StatusUnauthorized, syncproto.CodeUnauthorized)

		got, _ := scrape(t, srv)
		if n := got.value("fieldsync_auth_failures_total", labels{"reason": metrics.AuthMetricsToken}); n != 3 {
			t.Fatalf("metrics token failures: %v, want 3", n)
		}
	})
	t.Run("Open", func(t *testing.T) {
		srv := servertest.Start(t, servertest.Options{Metrics: metrics.New(metrics.Options{})})
		r := send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/metrics"})
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte("fieldsync_store_size_bytes")) {
			t.Fatalf("open /metrics: %d %s", r.Status, clip(r.Body))
		}
	})
	t.Run("NoMetrics", func(t *testing.T) {
		srv := servertest.Start(t, servertest.Options{})
		wantError(t, send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/metrics"}), http.StatusNotFound, syncproto.CodeNotFound)
	})
}
