package console_test

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkConsolePages renders the dashboard (7 and 30 days, the wall)
// and a filtered list page for the city's center over HTTP, with 20,000
// warnings by default, so make bench stays short; FIELDSYNC_BENCH_WARNINGS
// sets the number (FIELDSYNC_BENCH_WARNINGS=1000000, or the older
// FIELDSYNC_BENCH_1M=1; loading a million takes minutes). Target: under
// 100 ms each at a million.
func BenchmarkConsolePages(b *testing.B) {
	n := 20_000
	if os.Getenv("FIELDSYNC_BENCH_1M") == "1" && !testing.Short() {
		n = 1_000_000
	}
	if v := os.Getenv("FIELDSYNC_BENCH_WARNINGS"); v != "" && !testing.Short() {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			b.Fatalf("FIELDSYNC_BENCH_WARNINGS=%q is not a number of warnings", v)
		}
	}
	srv := servertest.Start(b, servertest.Options{NoSync: true})
	ctx := context.Background()
	tree := demo.City(1)
	center := servertest.LoadStore(b, srv.Store, tree)[demo.CenterUsername]
	start := time.Now()
	for day := 0; day < 30 && n > 0; day++ {
		rows := demo.Warnings(tree, time.Now().AddDate(0, 0, -day-1).Truncate(24*time.Hour), n/30, int64(day))
		feed := make([]store.FeedRow, len(rows))
		for i, w := range rows {
			feed[i] = store.FeedRow{Num: i + 1, Warning: w}
		}
		if _, err := srv.Store.ImportFeed(ctx, center.Actor(""), feed); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds(), "load-s")

	br := newBrowser(b, srv.URL)
	resp, _ := br.do("POST", "/console/login", url.Values{"username": {demo.CenterUsername}, "password": {demo.CenterPassword}}, nil)
	if resp.StatusCode != 303 {
		b.Fatalf("login: %d", resp.StatusCode)
	}
	for _, page := range []struct{ name, path string }{
		{"dashboard", "/console/"}, {"dashboard-30d", "/console/?range=30d"}, {"wall", "/console/wall"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				if resp, _ := br.do("GET", page.path, nil, nil); resp.StatusCode != 200 {
					b.Fatalf("%s: %d", page.path, resp.StatusCode)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
	b.Run("list-default", func(b *testing.B) {
		// The list as the nav opens it: the unfinished, soonest deadline
		// first (read from the unfinished index).
		for b.Loop() {
			if resp, _ := br.do("GET", "/console/warnings", nil, nil); resp.StatusCode != 200 {
				b.Fatalf("list: %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	})
	b.Run("list-filtered", func(b *testing.B) {
		// The filters are in the URL, as a bookmarked view's.
		path := "/console/warnings?" + url.Values{"status": {syncproto.WarningAssigned}, "risk": {"high"}, "sort": {"deadline"}}.Encode()
		for b.Loop() {
			if resp, _ := br.do("GET", path, nil, nil); resp.StatusCode != 200 {
				b.Fatalf("list: %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	})
}
