package store_test

// BenchmarkQueriesAt1M measures the read side of docs/API.md against the
// issue's targets: "With 1 million warnings in the store: stats for the city
// under 50 ms, a filtered list page under 20 ms, feedback page under 20 ms."
// It calls the store directly: no HTTP, no codec, no audit write.
//
//	go test -run='^$' -bench=QueriesAt1M ./server/store/                                   # 20,000 warnings, seconds
//	FIELDSYNC_BENCH_1M=1 go test -run='^$' -bench=QueriesAt1M -timeout=60m ./server/store/ # 1,000,000 warnings, minutes
//	FIELDSYNC_BENCH_WARNINGS=100000 go test -run='^$' -bench=QueriesAt1M ./server/store/   # any size
//
// Building the million takes minutes and a few GB in the temporary
// directory, so it is opt-in (FIELDSYNC_BENCH_1M=1, ignored with -short);
// by default the same benchmarks run at 20,000 warnings so `make bench`
// stays quick.

import (
	"bufio"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// queryBenchSize is the number of warnings BenchmarkQueriesAt1M loads and
// the label of its sub-benchmarks.
func queryBenchSize() (int, string) {
	if v := os.Getenv("FIELDSYNC_BENCH_WARNINGS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n, sizeLabel(n)
		}
	}
	if os.Getenv("FIELDSYNC_BENCH_1M") == "1" && !testing.Short() {
		return 1_000_000, "1M"
	}
	return 20_000, "20k"
}

func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// Shares of the work done on the loaded warnings. Every village has one
// cadre, so the feed assigns village warnings (about 80% of demo.Warnings)
// at once; warnings addressed to a township or county stay dispatched.
const (
	attemptShare  = 0.30 // of all warnings, one attempt each
	closedShare   = 0.50 // of those attempted, approved by the township lead
	queryBenchDay = 30   // days of warnings, ending yesterday (Beijing)
)

// queryOutcomes is the mix of attempt outcomes: 60% conclusive (the warning
// is resolved), 40% not (in progress).
var queryOutcomes = []struct {
	outcome string
	reached bool
	method  string
	weight  int
}{
	{syncproto.OutcomeDissuaded, true, syncproto.MethodVisit, 35},
	{syncproto.OutcomeDissuaded, true, syncproto.MethodPhone, 15},
	{syncproto.OutcomeAlreadyDefrauded, true, syncproto.MethodVisit, 5},
	{syncproto.OutcomeNotTarget, true, syncproto.MethodPhone, 5},
	{syncproto.OutcomeUnreachable, false, syncproto.MethodPhone, 25},
	{syncproto.OutcomeRefused, true, syncproto.MethodVideo, 15},
}

// simClock is the store's clock while loading: it moves with the feed, so
// warnings are received within the hour they were warned, and attempts
// and reviews come hours after.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *simClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *simClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// pendingWork is an attempt or a review due in a later hour of loading.
type pendingWork struct {
	id      string
	village string
	version uint64 // the version after the attempt, for a review's base
	outcome int    // index in queryOutcomes
}

// queryLoad is what loading produced, for the benchmarks and the report.
type queryLoad struct {
	warnings, attempts, reviews int
	importTime, pushTime        time.Duration
	total                       time.Duration
	phoneTail                   string // the last 4 digits of a recent warning's phone
	township                    string // the busiest township
}

// loadQueryCity fills c with n warnings over the last 30 days and the
// work done on them, hour by hour of clock, which c's store must be open
// on (with fsync off, to keep loading quick).
func loadQueryCity(tb testing.TB, c *benchCity, clock *simClock, n int) queryLoad {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	var ld queryLoad

	// The center user imports the feed, as the center's systems do.
	users, err := c.st.UpsertUsers(ctx, c.admin, []store.UserUpdate{{Username: demo.CenterUsername, Name: "市反诈中心", Unit: demo.CityCode, PasswordHash: "x"}})
	if err != nil {
		tb.Fatal(err)
	}
	center := users[0].Actor(uuid.NewString())
	cadreOf := make(map[string]*benchUser, len(c.cadres))
	for _, u := range c.cadres {
		cadreOf[u.user.Unit] = u
	}

	tree := demo.City(1)
	now := time.Now()
	today := syncproto.DayStart(now)
	first := today.AddDate(0, 0, -queryBenchDay)
	lastHour := now.Truncate(time.Hour)
	rnd := mrand.New(mrand.NewPCG(20, 24))
	// Attempts are drawn among village warnings so that attemptShare of all
	// warnings get one.
	pAttempt := attemptShare / 0.8
	var conclusive float64
	for _, o := range queryOutcomes {
		if syncproto.Conclusive(o.outcome) {
			conclusive += float64(o.weight)
		}
	}
	pClose := closedShare * 100 / conclusive
	totalWeight := 0
	for _, o := range queryOutcomes {
		totalWeight += o.weight
	}
	pickOutcome := func() int {
		u := rnd.IntN(totalWeight)
		for i, o := range queryOutcomes {
			if u < o.weight {
				return i
			}
			u -= o.weight
		}
		return 0
	}

	attempts := map[time.Time][]pendingWork{} // by the hour they are due
	reviews := map[time.Time][]pendingWork{}
	townships := map[string]int{}
	var feed []syncproto.FeedWarning // the day's feed, in warned_at order
	next := 0
	for hour := first; !hour.After(lastHour); hour = hour.Add(time.Hour) {
		end := hour.Add(time.Hour)
		// Days start on the hour in Beijing: a new day brings its feed.
		if day := int(hour.Sub(first) / (24 * time.Hour)); hour.Sub(first)%(24*time.Hour) == 0 && day < queryBenchDay {
			perDay := n / queryBenchDay
			if day == queryBenchDay-1 {
				perDay = n - perDay*(queryBenchDay-1)
			}
			feed, next = demo.Warnings(tree, hour, perDay, int64(day)), 0
		}
		// The hour's feed, received at its end.
		var rows []store.FeedRow
		for next < len(feed) && feed[next].WarnedAt.Before(end) {
			rows = append(rows, store.FeedRow{Num: len(rows) + 1, Warning: feed[next]})
			feed[next] = syncproto.FeedWarning{} // let it go
			next++
		}
		clock.set(end)
		if len(rows) > 0 {
			t := time.Now()
			resp, err := c.st.ImportFeed(ctx, center, rows)
			if err != nil {
				tb.Fatal(err)
			}
			ld.importTime += time.Since(t)
			if len(resp.Created) != len(rows) {
				tb.Fatalf("feed created %d of %d warnings: %+v", len(resp.Created), len(rows), resp.Invalid[:min(3, len(resp.Invalid))])
			}
			ld.warnings += len(rows)
			for i, cr := range resp.Created {
				w := &rows[i].Warning
				if syncproto.UnitLevel(w.Unit) == syncproto.RoleVillage {
					townships[syncproto.ParentCode(w.Unit)]++
					if rnd.Float64() < pAttempt {
						// Reached within 1 to 12 hours.
						due := end.Add(time.Duration(1+rnd.IntN(12)) * time.Hour)
						attempts[due] = append(attempts[due], pendingWork{id: cr.ID, village: w.Unit, outcome: pickOutcome()})
					}
				}
			}
			ld.phoneTail = rows[len(rows)-1].Warning.Phone[len(rows[len(rows)-1].Warning.Phone)-4:]
		}
		// The hour's attempts by each cadre and reviews by each lead, a
		// push per device, all at once so the writer groups them.
		clock.add(5 * time.Minute)
		t := time.Now()
		byCadre := map[*benchUser][]pendingWork{}
		for _, p := range attempts[end] {
			byCadre[cadreOf[p.village]] = append(byCadre[cadreOf[p.village]], p)
		}
		delete(attempts, end)
		byLead := map[*benchUser][]pendingWork{}
		for _, p := range reviews[end] {
			lead := c.leads[syncproto.ParentCode(p.village)]
			byLead[lead] = append(byLead[lead], p)
		}
		delete(reviews, end)
		var mu sync.Mutex
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		at := clock.now().Add(-2 * time.Minute)
		for u, work := range byCadre {
			ops := make([]syncproto.Op, len(work))
			for i, p := range work {
				o := queryOutcomes[p.outcome]
				reached := o.reached
				var loss int64
				if o.outcome == syncproto.OutcomeAlreadyDefrauded {
					loss = int64(1+u.rnd.IntN(5000)) * 100
				}
				u.seq++
				ops[i] = syncproto.Op{
					ID: benchUUID(u.rnd), ClientSeq: u.seq, Type: syncproto.OpRecorded, WarningID: p.id, At: at,
					Body: syncproto.OpBody{
						AttemptID: benchUUID(u.rnd), Method: o.method, Reached: &reached, Outcome: o.outcome, LossFen: loss,
						Notes:    benchNotes[u.rnd.IntN(len(benchNotes))],
						Location: &syncproto.Location{Lat: 34.02 + u.rnd.Float64()/10, Lng: 113.82 + u.rnd.Float64()/10, Accuracy: 15},
					},
				}
			}
			wg.Go(func() {
				results, err := pushAll(ctx, c.st, u.actor, ops)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ld.attempts += len(ops)
				for i, p := range work {
					if !syncproto.Conclusive(queryOutcomes[p.outcome].outcome) || rnd.Float64() >= pClose {
						continue
					}
					// Approved 1 to 24 hours later.
					p.version = results[i].Version
					due := end.Add(time.Duration(1+rnd.IntN(24)) * time.Hour)
					reviews[due] = append(reviews[due], p)
				}
			})
		}
		for lead, work := range byLead {
			ops := make([]syncproto.Op, len(work))
			for i, p := range work {
				lead.seq++
				ops[i] = syncproto.Op{
					ID: benchUUID(lead.rnd), ClientSeq: lead.seq, Type: syncproto.OpReviewed, WarningID: p.id,
					BaseVersion: p.version, At: at, Body: syncproto.OpBody{Decision: syncproto.DecisionApprove},
				}
			}
			wg.Go(func() {
				if _, err := pushAll(ctx, c.st, lead.actor, ops); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				ld.reviews += len(ops)
				mu.Unlock()
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			tb.Fatal(*err)
		}
		ld.pushTime += time.Since(t)
		if h := hour.In(syncproto.Beijing); h.Hour() == 23 && n >= 100_000 {
			tb.Logf("loaded %s: %d warnings, %d attempts, %d reviews in %v", h.Format(time.DateOnly), ld.warnings, ld.attempts, ld.reviews, time.Since(start).Round(time.Second))
		}
	}
	for code, k := range townships {
		if k > townships[ld.township] || (k == townships[ld.township] && code < ld.township) {
			ld.township = code
		}
	}
	ld.total = time.Since(start)
	return ld
}

// pushAll pushes ops as one batch and checks each was applied.
func pushAll(ctx context.Context, st *store.Store, actor syncproto.Actor, ops []syncproto.Op) ([]syncproto.Result, error) {
	resp, err := st.Push(ctx, actor, ops)
	if err != nil {
		return nil, err
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			return nil, fmt.Errorf("op %d: %s %s %s", r.ClientSeq, r.Status, r.Code, r.Message)
		}
	}
	return resp.Results, nil
}

// memFigures are the process's memory after a GC: the Go heap, and the
// resident set as Linux counts it (anonymous pages, and file pages of the
// memory-mapped store).
type memFigures struct {
	heapAlloc, heapInuse, sys uint64
	rss, rssAnon, rssFile     uint64
}

func readMem() memFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memFigures{heapAlloc: ms.HeapAlloc, heapInuse: ms.HeapInuse, sys: ms.Sys}
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			kb, _ := strconv.ParseUint(fields[1], 10, 64)
			switch fields[0] {
			case "VmRSS:":
				m.rss = kb << 10
			case "RssAnon:":
				m.rssAnon = kb << 10
			case "RssFile:":
				m.rssFile = kb << 10
			}
		}
	}
	return m
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// reportMs adds ms/op, the unit of the targets.
func reportMs(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
}

// BenchmarkQueriesAt1M builds one store holding the demo city and N
// warnings (1,000,000 with FIELDSYNC_BENCH_1M=1, else 20,000) spread over
// its villages, townships and counties and over the last 30 days, received
// hour by hour by the center, with the field's work on them: 30% get an
// attempt 1 to 12 hours later (60% of those conclusive), and half of the
// attempted are approved by their township lead 1 to 24 hours after that.
// Loading runs with fsync off on a simulated clock; the store is then
// reopened with fsync on and the real clock, so its cache of decoded
// warnings is cold, as after a restart.
//
// The sub-benchmarks call the store as the app's Stats, List and Feedback
// handlers do (without the list's audit write):
//
//   - stats/city-30d: the city's figures over the 30 days (and today).
//   - stats/township-7d: the busiest township over the last 7 days (the
//     API's default range).
//   - list/overdue-deadline: the city, status=in_progress,assigned,
//     overdue=true, sort=deadline, limit 50.
//   - list/phone-tail: the city, q = the last 4 digits of a recent phone;
//     items/page and budget-hit say whether it filled a page or stopped
//     at the scan budget of 20,000 warnings.
//   - list/township: the busiest township, no filter, limit 50.
//   - feedback/start and feedback/near-head: the center's feedback, limit
//     500, from an empty cursor and from 1000 log entries before the head.
//   - load: how long loading took (load-s), the store file (file-MiB), the
//     Go heap after a GC at the end of loading, with the writer's cache warm
//     (heap-MiB), and the process's resident set then (rss-MiB, of which
//     rss-file-MiB mapped store pages).
func BenchmarkQueriesAt1M(b *testing.B) {
	n, label := queryBenchSize()
	start := time.Now()
	c := newBenchCity(b)
	// Reopen on the simulated clock, fsync still off, for loading.
	if err := c.st.Close(); err != nil {
		b.Fatal(err)
	}
	clock := &simClock{}
	clock.set(time.Now())
	st, err := store.Open(c.dir, store.Options{NoSync: true, Now: clock.now})
	if err != nil {
		b.Fatal(err)
	}
	c.st = st
	b.Cleanup(func() { st.Close() })
	ld := loadQueryCity(b, c, clock, n)
	loaded := readMem()
	c.reopen(b, true) // fsync on, real clock, cold cache
	ld.total = time.Since(start)
	var fileSize int64
	if fi, err := os.Stat(filepath.Join(c.dir, store.DBFile)); err == nil {
		fileSize = fi.Size()
	}
	b.Logf("%s: loaded %d warnings, %d attempts, %d reviews (log %d entries) in %v: import %v (%.0f warnings/s), pushes %v; store file %.0f MiB; heap %.1f MiB (in use %.1f, sys %.1f), RSS %.0f MiB (anon %.0f, file %.0f)",
		label, ld.warnings, ld.attempts, ld.reviews, lastSeq(b, c.st), ld.total.Round(time.Millisecond),
		ld.importTime.Round(time.Millisecond), float64(ld.warnings)/ld.importTime.Seconds(), ld.pushTime.Round(time.Millisecond),
		mib(uint64(fileSize)), mib(loaded.heapAlloc), mib(loaded.heapInuse), mib(loaded.sys), mib(loaded.rss), mib(loaded.rssAnon), mib(loaded.rssFile))

	now := time.Now()
	today := syncproto.DayOf(now)
	city := demo.CityCode
	statsCity := store.StatsQuery{Unit: city, From: syncproto.DayOf(now.AddDate(0, 0, -queryBenchDay)), To: today, Now: now}
	if s, err := c.st.Stats(statsCity); err != nil {
		b.Fatal(err)
	} else {
		t := s.Total
		if t.Received != int64(ld.warnings) {
			b.Fatalf("city stats: received %d, want %d", t.Received, ld.warnings)
		}
		b.Logf("city over %s..%s: received %d, assigned %d, reached %d, resolved %d, closed %d, overdue %d, first contact median %d min (n %d), %d daily rows",
			s.From, s.To, t.Received, t.Assigned, t.Reached, t.Resolved, t.Closed, t.Overdue, t.FirstContact.Median, t.FirstContact.N, len(s.Daily))
	}
	yes := true

	b.Run(label+"/stats/city-30d", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.st.Stats(statsCity); err != nil {
				b.Fatal(err)
			}
		}
		reportMs(b)
	})
	b.Run(label+"/stats/township-7d", func(b *testing.B) {
		q := store.StatsQuery{Unit: ld.township, From: syncproto.DayOf(now.AddDate(0, 0, -6)), To: today, Now: now}
		var received int64
		for b.Loop() {
			s, err := c.st.Stats(q)
			if err != nil {
				b.Fatal(err)
			}
			received = s.Total.Received
		}
		reportMs(b)
		b.ReportMetric(float64(received), "received")
	})
	list := func(name string, q store.ListQuery) {
		b.Run(label+"/list/"+name, func(b *testing.B) {
			q.Now, q.Limit = now, 50
			var page *syncproto.WarningList
			for b.Loop() {
				var err error
				if page, err = c.st.List(q); err != nil {
					b.Fatal(err)
				}
			}
			reportMs(b)
			b.ReportMetric(float64(len(page.Items)), "items/page")
			hit := 0.0
			if page.More && len(page.Items) < q.Limit {
				hit = 1 // stopped at the scan budget
			}
			b.ReportMetric(hit, "budget-hit")
		})
	}
	list("overdue-deadline", store.ListQuery{Unit: city, Status: []string{syncproto.WarningInProgress, syncproto.WarningAssigned}, Overdue: &yes, Sort: store.SortDeadline})
	list("phone-tail", store.ListQuery{Unit: city, Text: ld.phoneTail, Sort: store.SortReceived})
	list("township", store.ListQuery{Unit: ld.township, Sort: store.SortReceived})

	// A cursor near the head: the first page's, moved to 1000 log entries
	// before the end.
	firstPage, err := c.st.Feedback(city, "", 500)
	if err != nil {
		b.Fatal(err)
	}
	cur, perr := syncproto.ParseCursor(firstPage.Cursor)
	if perr != nil {
		b.Fatal(perr)
	}
	cur.Seq = lastSeq(b, c.st) - 1000
	nearHead := cur.Encode()
	for _, fb := range []struct{ name, cursor string }{{"start", ""}, {"near-head", nearHead}} {
		b.Run(label+"/feedback/"+fb.name, func(b *testing.B) {
			var page *syncproto.FeedbackResponse
			for b.Loop() {
				var err error
				if page, err = c.st.Feedback(city, fb.cursor, 500); err != nil {
					b.Fatal(err)
				}
			}
			reportMs(b)
			b.ReportMetric(float64(len(page.Items)), "items/page")
		})
	}

	b.Run(label+"/load", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(ld.total.Seconds(), "load-s")
		b.ReportMetric(mib(uint64(fileSize)), "file-MiB")
		b.ReportMetric(mib(loaded.heapAlloc), "heap-MiB")
		b.ReportMetric(mib(loaded.rss), "rss-MiB")
		b.ReportMetric(mib(loaded.rssFile), "rss-file-MiB")
	})
}
