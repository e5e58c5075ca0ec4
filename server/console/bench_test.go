package console_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkConsolePages renders the dashboard and a filtered list page for
// the city's center over HTTP, with 20,000 warnings, or a million with
// FIELDSYNC_BENCH_1M=1 (loading takes minutes). Target: under 100 ms each
// at a million.
func BenchmarkConsolePages(b *testing.B) {
	n := 20_000
	if os.Getenv("FIELDSYNC_BENCH_1M") == "1" && !testing.Short() {
		n = 1_000_000
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
	b.Run("dashboard", func(b *testing.B) {
		for b.Loop() {
			if resp, _ := br.do("GET", "/console/", nil, nil); resp.StatusCode != 200 {
				b.Fatalf("dashboard: %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
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
