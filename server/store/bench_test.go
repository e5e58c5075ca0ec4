package store_test

// Benchmarks of the store against the targets of DESIGN.md ("Targets"):
// durable push throughput and group commit, the cost of a pull with no
// changes as the log grows, and a township lead's initial sync. They call
// the store directly: no HTTP, no codec (except where a sub-benchmark says
// so). examples/load measures the same things end to end.
//
//	go test -run='^$' -bench=. -benchmem ./server/store/
//	FIELDSYNC_BENCH_1M=0 go test -run='^$' -bench=. ./server/store/ # without the 1M-op log
//
// Stores are filled with fsync off (store.Options{NoSync: true}) to keep
// setup quick; BenchmarkPush then reopens its store with fsync on, so every
// measured push is durable.

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/benchcity"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// pushBatch is how many ops a phone sends per push in these benchmarks, as
// in the push target ("batches of 20").
const pushBatch = 20

// benchUser is a device of the bench city (a village cadre who is the
// only cadre of its village, so the feed assigns its village's warnings to
// it at once, or a township lead) and the warnings these benchmarks gave it.
type benchUser struct {
	*benchcity.Device
	warnings []string // warnings assigned to a cadre
	next     int      // next warning to record an attempt on
}

// benchCity is a store holding the demo city of Xuchang (its ~130 villages
// and 22 townships), a cadre per village and a lead per township, each with
// a device (internal/benchcity).
type benchCity struct {
	*benchcity.City
	cadres []*benchUser // by village, in tree order
	leads  map[string]*benchUser
	feed   int // warnings imported so far
}

// newBenchCity makes the city in a new store with fsync off.
func newBenchCity(tb testing.TB) *benchCity {
	tb.Helper()
	city, err := benchcity.New(context.Background(), tb.TempDir(), benchcity.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { city.Store.Close() })
	c := &benchCity{City: city, leads: map[string]*benchUser{}}
	for _, d := range city.Cadres {
		c.cadres = append(c.cadres, &benchUser{Device: d})
	}
	for unit, d := range city.Leads {
		c.leads[unit] = &benchUser{Device: d}
	}
	return c
}

// reopen closes the store and opens it again with fsync as sync says.
func (c *benchCity) reopen(tb testing.TB, sync bool) {
	tb.Helper()
	if err := c.Reopen(store.Options{NoSync: !sync}); err != nil {
		tb.Fatal(err)
	}
	st := c.Store
	tb.Cleanup(func() { st.Close() })
}

// leadOf is the lead of a cadre's township.
func (c *benchCity) leadOf(u *benchUser) *benchUser {
	return c.leads[syncproto.ParentCode(u.User.Unit)]
}

// importWarnings imports perCadre warnings into each cadre's village, in
// feed requests of at most 10,000 rows; each is assigned to the cadre.
func (c *benchCity) importWarnings(tb testing.TB, cadres []*benchUser, perCadre int) {
	tb.Helper()
	const chunk = 10_000
	total := perCadre * len(cadres)
	day := time.Now().Add(-24 * time.Hour)
	for start := 0; start < total; start += chunk {
		n := min(chunk, total-start)
		ws := demo.Warnings(demo.City(1), day, n, int64(c.feed))
		rows := make([]store.FeedRow, n)
		owner := make([]*benchUser, n)
		for i := range ws {
			k := start + i
			owner[i] = cadres[k%len(cadres)]
			ws[i].Unit = owner[i].User.Unit
			ws[i].ExternalID = fmt.Sprintf("BENCH-%08d", c.feed+i)
			rows[i] = store.FeedRow{Num: i + 1, Warning: ws[i]}
		}
		resp, err := c.Store.ImportFeed(context.Background(), c.Admin, rows)
		if err != nil {
			tb.Fatal(err)
		}
		if len(resp.Created) != n {
			tb.Fatalf("feed created %d of %d warnings: %+v", len(resp.Created), n, resp.Invalid[:min(3, len(resp.Invalid))])
		}
		for i, cr := range resp.Created {
			owner[i].warnings = append(owner[i].warnings, cr.ID)
		}
		c.feed += n
	}
}

// recordOps makes n dissuasion.recorded ops of u's device, with the next
// client_seqs, on u's warnings in turn.
func (u *benchUser) recordOps(n int) []syncproto.Op {
	ops := make([]syncproto.Op, n)
	now := time.Now()
	for i := range ops {
		u.Seq++
		ops[i] = benchcity.RecordedOp(u.Rnd, u.Seq, u.warnings[u.next%len(u.warnings)], u.Rnd.IntN(3), now)
		u.next++
	}
	return ops
}

// push sends n new ops of u and checks every one was applied. It is safe
// to call from any goroutine.
func (c *benchCity) push(u *benchUser, n int) error {
	resp, err := c.Store.Push(context.Background(), u.Actor, u.recordOps(n))
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			return fmt.Errorf("op %d: %s %s %s", r.ClientSeq, r.Status, r.Code, r.Message)
		}
	}
	return nil
}

// head pulls u's scope to the end and returns the cursor there.
func (c *benchCity) head(tb testing.TB, u *benchUser) string {
	tb.Helper()
	cursor := ""
	for {
		resp, err := c.Store.Pull(context.Background(), u.Actor, store.PullPage{Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			tb.Fatal(err)
		}
		cursor = resp.Cursor
		if !resp.More {
			return cursor
		}
	}
}

// pullNoChange pulls b.N times from cursor, which must be u's head.
func (c *benchCity) pullNoChange(b *testing.B, u *benchUser, cursor string) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Store.Pull(ctx, u.Actor, store.PullPage{Cursor: cursor, Limit: syncproto.DefaultPullLimit})
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Changes) != 0 || resp.More || resp.Reset {
			b.Fatalf("pull at head: %d changes, more %v, reset %v", len(resp.Changes), resp.More, resp.Reset)
		}
	}
}

// reportPushRate turns ns/op into the time per pushed op (an iteration
// of b is a batch of pushBatch ops; B/op and allocs/op stay per batch) and
// adds the time per batch and the ops per second.
func reportPushRate(b *testing.B) {
	ops := float64(b.N * pushBatch)
	ns := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(ns/ops, "ns/op")
	b.ReportMetric(ns/float64(b.N), "ns/batch")
	b.ReportMetric(ops/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkPush measures durable pushes (fsync on) of batches of 20
// dissuasion.recorded ops: one device alone, then 8 and 64 devices at once,
// whose concurrent requests the single writer groups into one transaction
// and one fsync. Each device records attempts on 300 warnings of its own in
// turn, so a warning holds a handful of attempts, as in the field.
func BenchmarkPush(b *testing.B) {
	c := newBenchCity(b)
	if len(c.cadres) < 64 {
		b.Fatalf("only %d cadres", len(c.cadres))
	}
	c.importWarnings(b, c.cadres[:64], 300)
	c.reopen(b, true)

	b.Run("devices=1", func(b *testing.B) {
		u := c.cadres[0]
		for b.Loop() {
			if err := c.push(u, pushBatch); err != nil {
				b.Fatal(err)
			}
		}
		reportPushRate(b)
	})
	for _, n := range []int{8, 64} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((n + procs - 1) / procs)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				u := c.cadres[next.Add(1)-1]
				for pb.Next() {
					if err := c.push(u, pushBatch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportPushRate(b)
		})
	}
}

// BenchmarkPullNoChange measures a pull whose cursor is at the head of the
// device's scope: a village cadre's (its user bucket) and a township lead's
// (its unit bucket, which also holds its directory).
func BenchmarkPullNoChange(b *testing.B) {
	c := newBenchCity(b)
	c.importWarnings(b, c.cadres, 50)
	for _, u := range c.cadres {
		if err := c.push(u, 50); err != nil {
			b.Fatal(err)
		}
	}
	cadre := c.cadres[0]
	lead := c.leadOf(cadre)
	b.Run("cadre", func(b *testing.B) { c.pullNoChange(b, cadre, c.head(b, cadre)) })
	b.Run("lead", func(b *testing.B) { c.pullNoChange(b, lead, c.head(b, lead)) })
}

// growTo fills the log to at least target entries, a tenth of them feed
// warnings spread over every village and the rest attempts pushed in
// batches of 500 by every cadre's device, four devices at a time, so a
// warning holds about nine attempts whatever the size.
func (c *benchCity) growTo(tb testing.TB, target uint64) {
	tb.Helper()
	have := lastSeq(tb, c.Store)
	if have >= target {
		return
	}
	perCadre := max(1, int((target-have)/10)/len(c.cadres))
	c.importWarnings(tb, c.cadres, perCadre)
	const batch = 500
	for {
		have = lastSeq(tb, c.Store)
		if have >= target {
			return
		}
		rounds := (int(target-have) + batch*len(c.cadres) - 1) / (batch * len(c.cadres))
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		work := make(chan *benchUser)
		for range 4 {
			wg.Go(func() {
				for u := range work {
					if err := c.push(u, batch); err != nil {
						failed.CompareAndSwap(nil, &err)
					}
				}
			})
		}
		for range rounds {
			for _, u := range c.cadres {
				if lastSeq(tb, c.Store) >= target {
					break
				}
				work <- u
			}
		}
		close(work)
		wg.Wait()
		if err := failed.Load(); err != nil {
			tb.Fatal(*err)
		}
	}
}

// BenchmarkPullNoChangeAtScale checks that a no-change pull costs the same
// whatever the log's size: with the log at 10 thousand ops, then, in the
// same store, at a million. The store is built once per run (per -count)
// with fsync off.
//
// Loading the million-op log takes time and room: 57 to 80 s on the
// 2-core machine of docs/BENCHMARKS.md, and a store file of about 1.9 GB
// in the temporary directory. FIELDSYNC_BENCH_1M=0 (or -short) skips that case;
// the 10k case always runs.
func BenchmarkPullNoChangeAtScale(b *testing.B) {
	c := newBenchCity(b)
	cadre := c.cadres[0]
	lead := c.leadOf(cadre)
	sizes := []struct {
		name string
		ops  uint64
	}{{"log=10k", 10_000}, {"log=1M", 1_000_000}}
	for _, size := range sizes {
		if size.ops > 100_000 && (os.Getenv("FIELDSYNC_BENCH_1M") == "0" || testing.Short()) {
			b.Logf("%s skipped (FIELDSYNC_BENCH_1M=0 or -short)", size.name)
			continue
		}
		start := time.Now()
		c.growTo(b, size.ops)
		var fileMB int64
		if fi, err := os.Stat(filepath.Join(c.Dir, store.DBFile)); err == nil {
			fileMB = fi.Size() >> 20
		}
		b.Logf("%s: built a log of %d ops in %v (%d warnings, cadre holds %d; store file %d MiB)",
			size.name, lastSeq(b, c.Store), time.Since(start).Round(time.Millisecond), c.feed, len(cadre.warnings), fileMB)
		cadreHead, leadHead := c.head(b, cadre), c.head(b, lead)
		b.Run(size.name+"/cadre", func(b *testing.B) { c.pullNoChange(b, cadre, cadreHead) })
		b.Run(size.name+"/lead", func(b *testing.B) { c.pullNoChange(b, lead, leadHead) })
	}
}

// BenchmarkInitialPull measures a township lead's first sync: 10,000
// warnings of its villages (and its directory) pulled from an empty cursor
// in pages of 2000. "store" is the store's work alone; "msgpack" adds
// encoding each page as the HTTP layer does.
func BenchmarkInitialPull(b *testing.B) {
	c := newBenchCity(b)
	lead := c.leadOf(c.cadres[0])
	var villages []*benchUser
	for _, u := range c.cadres {
		if syncproto.ParentCode(u.User.Unit) == lead.User.Unit {
			villages = append(villages, u)
		}
	}
	c.importWarnings(b, villages, (10_000+len(villages)-1)/len(villages))
	ctx := context.Background()
	for _, encode := range []bool{false, true} {
		name := "store"
		if encode {
			name = "msgpack"
		}
		b.Run(name, func(b *testing.B) {
			var changes, bytes int
			for b.Loop() {
				changes, bytes = 0, 0
				cursor := ""
				for {
					resp, err := c.Store.Pull(ctx, lead.Actor, store.PullPage{Cursor: cursor, Limit: syncproto.MaxPullLimit})
					if err != nil {
						b.Fatal(err)
					}
					changes += len(resp.Changes)
					if encode {
						data, err := syncproto.Msgpack.Marshal(resp)
						if err != nil {
							b.Fatal(err)
						}
						bytes += len(data)
					}
					cursor = resp.Cursor
					if !resp.More {
						break
					}
				}
			}
			if changes < 10_000 {
				b.Fatalf("initial pull got %d changes, want at least 10000", changes)
			}
			b.ReportMetric(float64(changes), "changes/sync")
			if encode {
				b.ReportMetric(float64(bytes), "bytes/sync")
			}
		})
	}
}

// busyCounty is a county lead's scope after a busy period: busyWarnings
// warnings spread over the county's villages, then attempts pushed by the
// villages' cadres, about busyChanges index entries per warning in all
// (the import and one or two attempts each), as in the field report of a
// lead's first pull carrying 53,240 changes for 20,000 warnings.
type busyCounty struct {
	c    *benchCity
	lead *benchUser
	// before is the lead's cursor at the head before the busy period.
	before string
	// records is how many distinct records (warnings, units, cadres)
	// the lead's scope holds.
	records int
}

const (
	busyWarnings = 20_000
	busyChanges  = 2.66
)

func newBusyCounty(tb testing.TB) *busyCounty {
	tb.Helper()
	ctx := context.Background()
	c := newBenchCity(tb)
	county := demo.City(1).Counties()[0]
	var cadres []*benchUser
	for _, u := range c.cadres {
		if syncproto.InScope(county, u.User.Unit) {
			cadres = append(cadres, u)
		}
	}
	users, err := c.Store.UpsertUsers(ctx, c.Admin, []store.UserUpdate{{Username: demo.CountyUsername(county), Name: "县" + county, Unit: county, PasswordHash: "x"}})
	if err != nil {
		tb.Fatal(err)
	}
	lead := &benchUser{Device: &benchcity.Device{User: users[0], Actor: users[0].Actor(uuid.NewString())}}
	var hash [32]byte
	rand.Read(hash[:])
	if _, err := c.Store.Login(ctx, &lead.User, store.SignIn{DeviceID: lead.Actor.DeviceID, Name: "bench county", Platform: "bench", RefreshHash: hash, RefreshTTL: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	perCadre := (busyWarnings + len(cadres) - 1) / len(cadres)
	c.importWarnings(tb, cadres, perCadre)
	b := &busyCounty{c: c, lead: lead, before: c.head(tb, lead)}
	// Attempts on each cadre's warnings in turn, the cadres working side
	// by side (a push of 100 each per round): every warning gets one, and
	// the first (busyChanges-2) of them a second, far apart in the log.
	attempts := int(float64(perCadre) * (busyChanges - 1))
	for done := 0; done < attempts; done += 100 {
		for _, u := range cadres {
			if err := c.push(u, min(attempts-done, 100)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	// Distinct records: a first pull of the whole scope counted by id.
	seen := map[string]bool{}
	cursor := ""
	for {
		resp, err := c.Store.Pull(ctx, lead.Actor, store.PullPage{Cursor: cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			tb.Fatal(err)
		}
		for _, ch := range resp.Changes {
			seen[ch.Entity+"/"+ch.ID] = true
		}
		cursor = resp.Cursor
		if !resp.More {
			break
		}
	}
	b.records = len(seen)
	return b
}

// BenchmarkPullAfterBusyPeriod measures what a county lead's device
// downloads after a busy period (newBusyCounty): "first" is a first sync
// from an empty cursor, "since" a pull from the cursor it had before the
// period. Pages are of 2000 changes, as the SDK asks, and with
// max_bytes=256KiB also of a byte budget, as a client on a 2G link would
// ask. changes/record is changes sent per distinct record (1 is the least
// possible); bytes/sync is the pages' MessagePack bodies before gzip,
// gzip-bytes/sync after it (what crosses a 2G link), max-gzip-page the
// largest page after gzip.
//
//	go test -run='^$' -bench=PullAfterBusyPeriod -benchtime=3x ./server/store/
func BenchmarkPullAfterBusyPeriod(b *testing.B) {
	busy := newBusyCounty(b)
	b.Logf("county %s: %d warnings, log of %d entries, %d distinct records in the lead's scope",
		busy.lead.User.Unit, busy.c.feed, lastSeq(b, busy.c.Store), busy.records)
	ctx := context.Background()
	for _, from := range []struct{ name, cursor string }{{"first", ""}, {"since", busy.before}} {
		for _, budget := range []int{0, 256 << 10} {
			name := from.name
			if budget > 0 {
				name += fmt.Sprintf("/max_bytes=%dKiB", budget>>10)
			}
			b.Run(name, func(b *testing.B) {
				var changes, pages, bytes, zipped, maxPage int
				var ids map[string]bool
				for b.Loop() {
					changes, pages, bytes, zipped, maxPage = 0, 0, 0, 0, 0
					ids = map[string]bool{}
					cursor := from.cursor
					for {
						resp, err := busy.c.Store.Pull(ctx, busy.lead.Actor, store.PullPage{Cursor: cursor, Limit: syncproto.MaxPullLimit, MaxBytes: budget})
						if err != nil {
							b.Fatal(err)
						}
						pages++
						changes += len(resp.Changes)
						for _, ch := range resp.Changes {
							ids[ch.Entity+"/"+ch.ID] = true
						}
						data, err := syncproto.Msgpack.Marshal(resp)
						if err != nil {
							b.Fatal(err)
						}
						z := len(servertest.Gzip(b, data, gzip.BestSpeed))
						bytes += len(data)
						zipped += z
						maxPage = max(maxPage, z)
						cursor = resp.Cursor
						if !resp.More {
							break
						}
					}
				}
				b.ReportMetric(float64(changes), "changes/sync")
				b.ReportMetric(float64(changes)/float64(len(ids)), "changes/record")
				b.ReportMetric(float64(pages), "pages/sync")
				b.ReportMetric(float64(bytes), "bytes/sync")
				b.ReportMetric(float64(zipped), "gzip-bytes/sync")
				b.ReportMetric(float64(maxPage), "max-gzip-page")
			})
		}
	}
}
