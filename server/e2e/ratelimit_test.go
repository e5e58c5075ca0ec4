package e2e_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// newStepClock stands still until the test moves it, so a limiter's
// buckets refill only when told.
func newStepClock() *fakeclock.Clock { return fakeclock.At(time.Now().UTC().Truncate(time.Second)) }

// wantRetryAfter checks a 429's envelope and its Retry-After in seconds.
func wantRetryAfter(t *testing.T, r rawResp, seconds int) *syncproto.Error {
	t.Helper()
	e := wantError(t, r, http.StatusTooManyRequests, syncproto.CodeRateLimited)
	if got := r.Header.Get("Retry-After"); got != strconv.Itoa(seconds) {
		t.Fatalf("Retry-After = %q, want %d (%s)", got, seconds, e.Message)
	}
	return e
}

func loginBody(t *testing.T, username, password string) []byte {
	t.Helper()
	return mustEncode(t, syncproto.JSON, syncproto.LoginRequest{Username: username, Password: password, DeviceID: uuid.NewString(), DeviceName: "test", Platform: "test"})
}

func loginFrom(t *testing.T, srv *servertest.Server, forwardedFor, username, password string) rawResp {
	t.Helper()
	r := rawReq{Path: "/v1/auth/login", ContentType: "application/json", Body: loginBody(t, username, password)}
	if forwardedFor != "" {
		r.Header = map[string]string{"X-Forwarded-For": forwardedFor}
	}
	return send(t, srv.URL, r)
}

func pullRaw(t *testing.T, srv *servertest.Server, d *servertest.Device) rawResp {
	t.Helper()
	return send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: d.Client.Token(), ContentType: "application/json",
		Body: mustEncode(t, syncproto.JSON, syncproto.PullRequest{DeviceID: d.ID})})
}

func TestRateLimit_PerDevice(t *testing.T) {
	clock := newStepClock()
	// One request every 10 seconds after a burst of 4: a 429's Retry-After
	// is then 10, computed from the bucket.
	srv := servertest.Start(t, servertest.Options{RateLimit: httpapi.RateLimit{DeviceRate: 0.1, DeviceBurst: 4, Now: clock.Now}})
	srv.LoadCity(t)
	ids := srv.Import(t, "center1", servertest.FeedRow("RL1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	a1 := srv.Login(t, "a1", servertest.CityPassword)
	a2 := srv.Login(t, "a2x", servertest.CityPassword)

	for i := 0; i < 4; i++ {
		wantOK(t, pullRaw(t, srv, a1), nil)
	}
	attempt := op(a1, syncproto.OpRecorded, ids["RL1"], 0, recordBody(syncproto.OutcomeDissuaded, true))
	refused := send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: a1.Client.Token(), ContentType: "application/json",
		Body: mustEncode(t, syncproto.JSON, syncproto.PushRequest{DeviceID: a1.ID, Ops: []syncproto.Op{attempt}})})
	wantRetryAfter(t, refused, 10)
	wantRetryAfter(t, pullRaw(t, srv, a1), 10)

	// Another device of the same address is not held back.
	wantOK(t, pullRaw(t, srv, a2), nil)

	// Nine seconds on the wait is one second; at ten the token is there.
	clock.Add(9 * time.Second)
	wantRetryAfter(t, pullRaw(t, srv, a1), 1)
	clock.Add(time.Second)
	var page syncproto.PullResponse
	wantOK(t, pullRaw(t, srv, a1), &page)
	if page.LastClientSeq != 0 {
		t.Fatalf("last_client_seq %d after a refused push, want 0", page.LastClientSeq)
	}
	// The refused push changed nothing: the same op applies now, once.
	clock.Add(10 * time.Second)
	resp := push(t, a1, attempt)
	mustApplied(t, resp.Results[0])

	// Health checks are never limited.
	for i := 0; i < 10; i++ {
		wantOK(t, send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/v1/healthz"}), nil)
	}
}

func TestRateLimit_PerAddressLogin(t *testing.T) {
	t.Run("TrustedProxy", func(t *testing.T) {
		clock := newStepClock()
		srv := servertest.Start(t, servertest.Options{RateLimit: httpapi.RateLimit{
			IPRate: 0.05, IPBurst: 2, Now: clock.Now,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
		}})
		srv.LoadCity(t)
		for i := 0; i < 2; i++ {
			wantOK(t, loginFrom(t, srv, "203.0.113.7", "a1", servertest.CityPassword), nil)
		}
		e := wantRetryAfter(t, loginFrom(t, srv, "203.0.113.7", "a1", servertest.CityPassword), 20)
		if e.Details["retry_after"] != float64(20) {
			t.Errorf("details.retry_after = %v, want 20", e.Details["retry_after"])
		}
		// Another client behind the same proxy has its own bucket.
		wantOK(t, loginFrom(t, srv, "203.0.113.8", "a1", servertest.CityPassword), nil)
		// The right-most address no trusted proxy wrote is the client: a
		// forged address to its left changes nothing, and trusted hops to
		// its right are skipped.
		wantRetryAfter(t, loginFrom(t, srv, "198.51.100.1, 203.0.113.7", "a1", servertest.CityPassword), 20)
		wantRetryAfter(t, loginFrom(t, srv, "203.0.113.7, 10.1.2.3", "a1", servertest.CityPassword), 20)
		// Refreshes count against the same bucket.
		wantRetryAfter(t, send(t, srv.URL, rawReq{Path: "/v1/auth/refresh", ContentType: "application/json", Header: map[string]string{"X-Forwarded-For": "203.0.113.7"},
			Body: mustEncode(t, syncproto.JSON, syncproto.RefreshRequest{RefreshToken: "x", DeviceID: uuid.NewString()})}), 20)
		clock.Add(20 * time.Second)
		wantOK(t, loginFrom(t, srv, "203.0.113.7", "a1", servertest.CityPassword), nil)
	})
	t.Run("UntrustedPeer", func(t *testing.T) {
		clock := newStepClock()
		srv := servertest.Start(t, servertest.Options{RateLimit: httpapi.RateLimit{IPRate: 0.05, IPBurst: 3, Now: clock.Now}})
		srv.LoadCity(t) // the admin's login is the first of the three
		// Without a trusted proxy X-Forwarded-For is anyone's to write:
		// every login counts against the peer, 127.0.0.1.
		wantOK(t, loginFrom(t, srv, "203.0.113.7", "a1", servertest.CityPassword), nil)
		wantOK(t, loginFrom(t, srv, "203.0.113.8", "a1", servertest.CityPassword), nil)
		wantRetryAfter(t, loginFrom(t, srv, "203.0.113.9", "a1", servertest.CityPassword), 20)
		wantRetryAfter(t, loginFrom(t, srv, "", "a1", servertest.CityPassword), 20)
	})
}
