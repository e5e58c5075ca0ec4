package metrics_test

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/metrics"
	"github.com/fieldsync/fieldsync/syncproto"
)

// value gathers m and returns the value of the series of name with exactly
// labels (a histogram's count), and whether it exists.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if !sameLabels(s.GetLabel(), labels) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func sameLabels(have []*dto.LabelPair, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for _, l := range have {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

func wantValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(t, m, name, labels)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

func TestMetrics_ActiveDevices(t *testing.T) {
	clk := fakeclock.At(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	m := metrics.New(metrics.Options{Now: clk.Now})
	pull := &syncproto.PullResponse{}
	hour := map[string]string{"window": "1h"}
	day := map[string]string{"window": "24h"}

	m.Pulled("11111111-1111-4111-8111-111111111111", pull)
	m.Pushed("22222222-2222-4222-8222-222222222222", nil, nil)
	m.Pulled("22222222-2222-4222-8222-222222222222", pull)
	wantValue(t, m, "fieldsync_active_devices", hour, 2)
	wantValue(t, m, "fieldsync_active_devices", day, 2)

	clk.Add(2 * time.Hour)
	m.Pulled("33333333-3333-4333-8333-333333333333", pull)
	wantValue(t, m, "fieldsync_active_devices", hour, 1)
	wantValue(t, m, "fieldsync_active_devices", day, 3)

	// The first two fall out of the day; the third is seen again.
	clk.Add(23 * time.Hour)
	m.Pulled("33333333-3333-4333-8333-333333333333", pull)
	wantValue(t, m, "fieldsync_active_devices", hour, 1)
	wantValue(t, m, "fieldsync_active_devices", day, 1)
}

func TestMetrics_Pushed(t *testing.T) {
	m := metrics.New(metrics.Options{})
	ops := []syncproto.Op{
		{ID: "op-3", ClientSeq: 3, Type: syncproto.OpReviewed},
		{ID: "op-1", ClientSeq: 1, Type: syncproto.OpRecorded},
		{ID: "op-2", ClientSeq: 2, Type: syncproto.OpAssigned},
	}
	// The store answers in client_seq order.
	results := []syncproto.Result{
		{OpID: "op-1", ClientSeq: 1, Status: syncproto.StatusDuplicate},
		{OpID: "op-2", ClientSeq: 2, Status: syncproto.StatusRejected, Code: syncproto.CodeInvalidState},
		{OpID: "op-3", ClientSeq: 3, Status: syncproto.StatusApplied},
	}
	m.Pushed("device", ops, results)
	wantValue(t, m, "fieldsync_ops_total", map[string]string{"type": syncproto.OpRecorded, "outcome": "duplicate", "code": ""}, 1)
	wantValue(t, m, "fieldsync_ops_total", map[string]string{"type": syncproto.OpAssigned, "outcome": "rejected", "code": syncproto.CodeInvalidState}, 1)
	wantValue(t, m, "fieldsync_ops_total", map[string]string{"type": syncproto.OpReviewed, "outcome": "applied", "code": ""}, 1)
	wantValue(t, m, "fieldsync_push_ops", nil, 1)

	// A result that matches no op is counted, as "other".
	m.Pushed("device", ops[:1], []syncproto.Result{{OpID: "op-9", ClientSeq: 3, Status: syncproto.StatusApplied}})
	wantValue(t, m, "fieldsync_ops_total", map[string]string{"type": "other", "outcome": "applied", "code": ""}, 1)
}

func TestMetrics_LabelsStayBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("", "BREW", 404, time.Millisecond)
	m.ObserveRequest("/v1/warnings/:id", "GET", 200, time.Millisecond)
	m.ObserveRequest("/v1/warnings/:id", "GET", 200, time.Millisecond)
	wantValue(t, m, "fieldsync_http_requests_total", map[string]string{"route": "unmatched", "method": "other", "status": "404"}, 1)
	wantValue(t, m, "fieldsync_http_requests_total", map[string]string{"route": "/v1/warnings/:id", "method": "GET", "status": "200"}, 2)
	wantValue(t, m, "fieldsync_http_request_duration_seconds", map[string]string{"route": "/v1/warnings/:id", "method": "GET", "status": "200"}, 2)

	m.AuthFailure("some new reason")
	wantValue(t, m, "fieldsync_auth_failures_total", map[string]string{"reason": "other"}, 1)
	// Every known reason is there from the start, so rate() sees its
	// first failure.
	wantValue(t, m, "fieldsync_auth_failures_total", map[string]string{"reason": metrics.AuthBadCredentials}, 0)
}

func TestMetrics_ObserveCommit(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveCommit(3, 2*time.Millisecond, false)
	m.ObserveCommit(1, time.Second, true)
	wantValue(t, m, "fieldsync_store_commit_requests", nil, 2)
	wantValue(t, m, "fieldsync_store_commit_duration_seconds", nil, 2)
	wantValue(t, m, "fieldsync_store_commit_failures_total", nil, 1)
}

// A nil *Metrics is what callers without metrics hold: it must count
// nothing and not panic.
func TestMetrics_Nil(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveRequest("/v1/healthz", "GET", 200, time.Millisecond)
	m.Pushed("device", []syncproto.Op{{ID: "x"}}, []syncproto.Result{{OpID: "x"}})
	m.Pulled("device", &syncproto.PullResponse{})
	m.FeedImported(&syncproto.FeedResponse{})
	m.ObserveCommit(1, time.Millisecond, false)
	m.AuthFailure(metrics.AuthBadToken)
	m.RefreshGraced()
	m.WatchStore(nil)
}

func TestMetrics_RefreshGraced(t *testing.T) {
	m := metrics.New(metrics.Options{})
	// Present from the start, like the failure reasons.
	wantValue(t, m, "fieldsync_refresh_grace_total", nil, 0)
	m.RefreshGraced()
	m.RefreshGraced()
	wantValue(t, m, "fieldsync_refresh_grace_total", nil, 2)
	// A grace retry is a refresh that worked, not a failure.
	wantValue(t, m, "fieldsync_auth_failures_total", map[string]string{"reason": metrics.AuthRefreshReused}, 0)
}

// The push path's cost: a push of 20 applied ops, counted.
func BenchmarkPushed(b *testing.B) {
	m := metrics.New(metrics.Options{})
	ops := make([]syncproto.Op, 20)
	results := make([]syncproto.Result, 20)
	for i := range ops {
		ops[i] = syncproto.Op{ID: string(rune('a' + i)), ClientSeq: uint64(i + 1), Type: syncproto.OpRecorded}
		results[i] = syncproto.Result{OpID: ops[i].ID, ClientSeq: ops[i].ClientSeq, Status: syncproto.StatusApplied}
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Pushed("0195b6c2-7a3e-7c1d-9f00-123456789abc", ops, results)
	}
}

// The cost every request pays.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("/v1/sync/push", "POST", 200, 3*time.Millisecond)
	}
}
