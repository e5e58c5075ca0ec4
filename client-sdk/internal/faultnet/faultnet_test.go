package faultnet_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/internal/faultnet"
	"github.com/fieldsync/fieldsync/syncproto"
)

// counter is a server that answers each request with how many it has seen.
func counter(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %s", n.Add(1), body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func post(t *testing.T, tr http.RoundTripper, url string) (*http.Response, string, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Post(url+"/v1/sync/push", "application/json", bytes.NewReader([]byte("body")))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data), nil
}

// TestTransport_Faults: each fault does what it says to the server and to
// the caller.
func TestTransport_Faults(t *testing.T) {
	for _, tc := range []struct {
		kind     faultnet.Kind
		rates    faultnet.Rates
		sent     int64 // requests the server saw
		wantErr  bool
		status   int
		wantBody string
	}{
		{faultnet.Sent, faultnet.Rates{}, 1, false, 200, "1 body"},
		{faultnet.DropRequest, faultnet.Rates{DropRequest: 1}, 0, true, 0, ""},
		{faultnet.DropResponse, faultnet.Rates{DropResponse: 1}, 1, true, 0, ""},
		{faultnet.Delay, faultnet.Rates{Delay: 1}, 1, false, 200, "1 body"},
		{faultnet.Duplicate, faultnet.Rates{Duplicate: 1}, 2, false, 200, "2 body"},
		{faultnet.Unavailable, faultnet.Rates{Unavailable: 1}, 0, false, 503, ""},
		{faultnet.RateLimited, faultnet.Rates{RateLimited: 1}, 0, false, 429, ""},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			srv, n := counter(t)
			tr := faultnet.New(1, nil)
			tr.SetRates(tc.rates)
			resp, body, err := post(t, tr, srv.URL)
			if (err != nil) != tc.wantErr || tc.wantErr && !errors.Is(err, faultnet.ErrInjected) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := n.Load(); got != tc.sent {
				t.Fatalf("server saw %d requests, want %d", got, tc.sent)
			}
			if last := tr.Last(); last.Kind != tc.kind || tr.Count(tc.kind) != 1 {
				t.Fatalf("last outcome %+v, counts %v", last, tr.Counts())
			}
			if tc.wantErr {
				return
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Fatalf("body %q, want %q", body, tc.wantBody)
			}
			if tc.status >= 400 {
				var env syncproto.ErrorEnvelope
				if err := syncproto.JSON.Unmarshal([]byte(body), &env); err != nil || env.Error == nil {
					t.Fatalf("error answer without the protocol envelope: %q", body)
				}
				if tc.status == 429 {
					ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
					if err != nil || ra < 0 || ra > 1 || tr.Last().RetryAfter != ra || env.Error.Code != syncproto.CodeRateLimited {
						t.Fatalf("429 with Retry-After %q, code %s", resp.Header.Get("Retry-After"), env.Error.Code)
					}
				}
			}
		})
	}
}

// TestTransport_Offline: an offline device sends nothing until it is back.
func TestTransport_Offline(t *testing.T) {
	srv, n := counter(t)
	tr := faultnet.New(1, nil)
	tr.SetOffline(true)
	if _, _, err := post(t, tr, srv.URL); !errors.Is(err, faultnet.ErrInjected) || n.Load() != 0 {
		t.Fatalf("offline: err %v, %d sent", err, n.Load())
	}
	tr.SetOffline(false)
	if _, _, err := post(t, tr, srv.URL); err != nil || n.Load() != 1 {
		t.Fatalf("online: err %v, %d sent", err, n.Load())
	}
}

// TestTransport_Seeded: the same seed gives the same faults.
func TestTransport_Seeded(t *testing.T) {
	srv, _ := counter(t)
	run := func(seed uint64) []faultnet.Kind {
		tr := faultnet.New(seed, nil)
		tr.SetRates(faultnet.Uniform(0.1))
		for range 60 {
			_, _, _ = post(t, tr, srv.URL)
		}
		var kinds []faultnet.Kind
		for _, o := range tr.History() {
			kinds = append(kinds, o.Kind)
		}
		return kinds
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 twice: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same faults: %v", a)
	}
}

// TestTransport_HookAndRetarget: a hook sees the body and may answer; a
// retargeted transport reaches the new server.
func TestTransport_HookAndRetarget(t *testing.T) {
	oldSrv, oldN := counter(t)
	newSrv, newN := counter(t)
	tr := faultnet.New(1, nil)
	var seen []string
	tr.SetHook(func(r *faultnet.Request, next faultnet.Next) (*http.Response, error) {
		seen = append(seen, fmt.Sprintf("%d %s %s", r.N, r.Path(), r.Body))
		if r.N == 2 {
			return faultnet.ErrorResponse(r.HTTP, 410, syncproto.CodeCursorExpired, "gone", nil, nil), nil
		}
		return next()
	})
	if _, body, err := post(t, tr, oldSrv.URL); err != nil || body != "1 body" {
		t.Fatalf("first: %q %v", body, err)
	}
	if resp, _, err := post(t, tr, oldSrv.URL); err != nil || resp.StatusCode != 410 || tr.Last().Code != syncproto.CodeCursorExpired || tr.Last().Kind != faultnet.Hooked {
		t.Fatalf("second: %v %v %+v", resp, err, tr.Last())
	}
	if err := tr.Retarget(newSrv.URL); err != nil {
		t.Fatal(err)
	}
	if _, body, err := post(t, tr, oldSrv.URL); err != nil || body != "1 body" || oldN.Load() != 1 || newN.Load() != 1 {
		t.Fatalf("retargeted: %q %v; old saw %d, new %d", body, err, oldN.Load(), newN.Load())
	}
	want := []string{"1 /v1/sync/push body", "2 /v1/sync/push body", "3 /v1/sync/push body"}
	if !slices.Equal(seen, want) {
		t.Fatalf("hook saw %q", seen)
	}
}
