package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
)

// run is the program as its main runs it.
var run = cli.Command(parseFlags, serveLink)

func TestParseFlags_PresetThenFlags(t *testing.T) {
	c, err := parseFlags([]string{"-preset", "gprs", "-down", "9600", "-cut-after", "20000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The flags given change the preset; the rest is the preset's.
	if l := c.link; l.DownBitsPerSec != 9600 || l.UpBitsPerSec != 20*1024 || l.DownDelay != 250*time.Millisecond || l.CutAfter != 20000 {
		t.Fatalf("link is %+v, want GPRS with 9600 bit/s down and a cut after 20000 bytes", l)
	}
}

func TestParseFlags_Invalid(t *testing.T) {
	for name, args := range map[string][]string{
		"UnknownPreset": {"-preset", "5g"},
		"NotLoopback":   {"-listen", "0.0.0.0:8081"},
		"Arguments":     {"extra"},
		"BadFlag":       {"-down", "fast"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseFlags(args, io.Discard); err == nil {
				t.Fatalf("%q accepted", args)
			}
		})
	}
	if err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-lose-answers", "2"}, io.Discard, io.Discard); err == nil {
		t.Fatal("-lose-answers 2 accepted")
	}
}

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-target", srv.Listener.Addr().String(), "-preset", "good2g"}, outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatalf("no first line: %v", <-done)
	}
	// "netshape: http://127.0.0.1:PORT -> ..."
	url, _, _ := strings.Cut(strings.TrimPrefix(lines.Text(), "netshape: "), " ")
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "ok" {
		t.Fatalf("body %q, %v", body, err)
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rest.String(), "Conns:1 ") {
		t.Fatalf("last words %q, want the stats of 1 connection", rest.String())
	}
}
