package stall_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/internal/stall"
)

// trickle answers n chunks, one every gap, flushing each.
func trickle(n int, gap time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i < n; i++ {
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
	}
}

func client(limit time.Duration) *http.Client {
	return &http.Client{Transport: &stall.Transport{Limit: limit}}
}

// A body that keeps moving outlasts the limit many times over.
func TestTransport_SlowButMovingIsNotCut(t *testing.T) {
	srv := httptest.NewServer(trickle(60, 50*time.Millisecond))
	defer srv.Close()
	resp, err := client(2*time.Second).Post(srv.URL, "text/plain", bytes.NewReader(make([]byte, 10_000)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("a moving body was cut: %v", err)
	}
	if len(data) != 6000 {
		t.Fatalf("read %d bytes, want 6000", len(data))
	}
}

// A body that stops moving is cut, and the error says it stalled.
func TestTransport_StalledBodyIsCut(t *testing.T) {
	srv := httptest.NewServer(trickle(2, time.Hour))
	defer srv.Close()
	resp, err := client(300 * time.Millisecond).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, stall.ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
}

// A server that never answers is cut before the headers, as a stall.
func TestTransport_NoAnswerIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	_, err := client(300 * time.Millisecond).Get(srv.URL)
	if !errors.Is(err, stall.ErrStalled) {
		t.Fatalf("err = %v, want ErrStalled", err)
	}
}

// A long poll's wait is added to the allowance for the headers only.
func TestTransport_WaitExtendsTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond)
		_, _ = w.Write([]byte("late"))
	}))
	defer srv.Close()
	ctx := stall.WithWait(context.Background(), time.Minute)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client(100 * time.Millisecond).Do(req)
	if err != nil {
		t.Fatalf("a held poll was cut: %v", err)
	}
	defer resp.Body.Close()
	if data, _ := io.ReadAll(resp.Body); string(data) != "late" {
		t.Fatalf("body %q", data)
	}
}

// The meter sees the answer's headers, end and size.
func TestTransport_Meter(t *testing.T) {
	srv := httptest.NewServer(trickle(5, 20*time.Millisecond))
	defer srv.Close()
	var m stall.Meter
	req, _ := http.NewRequestWithContext(stall.WithMeter(context.Background(), &m), http.MethodGet, srv.URL, nil)
	resp, err := client(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if m.Bytes != 500 || m.Headers.IsZero() || m.End.Before(m.Headers) {
		t.Fatalf("meter %+v", m)
	}
}
