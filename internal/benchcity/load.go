package benchcity

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Shares of the work done on the loaded warnings. Every village has one
// cadre while loading, so the feed assigns village warnings (about 80% of
// demo.Warnings) at once; warnings addressed to a township or county stay
// dispatched.
const (
	attemptShare = 0.30 // of all warnings, one attempt each
	closedShare  = 0.50 // of those attempted, approved by the township lead
	// Days is how many days of warnings LoadWarnings loads, ending
	// yesterday (Beijing).
	Days = 30
)

// outcomes is the mix of attempt outcomes: 60% conclusive (the warning
// is resolved), 40% not (in progress).
var outcomes = []struct {
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

// Clock is the store's clock while loading (give its Now as
// Options.Now): LoadWarnings moves it with the feed, so warnings are
// received within the hour they were warned, and attempts and reviews
// come hours after. It is safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now is the time the clock shows.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// pendingWork is an attempt or a review due in a later hour of loading.
type pendingWork struct {
	id      string
	village string
	version uint64 // the version after the attempt, for a review's base
	outcome int    // index in outcomes
}

// Load is what LoadWarnings loaded, for the benchmarks' reports.
type Load struct {
	Warnings, Attempts, Reviews int
	ImportTime, PushTime        time.Duration
	Total                       time.Duration
	PhoneTail                   string // the last 4 digits of a recent warning's phone
	Township                    string // the busiest township
}

// LoadWarnings fills c with n warnings over the last Days days and the
// work done on them, hour by hour of clock, which c's store must be open
// on (with fsync off, to keep loading quick): the center imports each
// hour's feed (demo.Warnings) at its end; 30% of all warnings get an
// attempt by their village's cadre 1 to 12 hours later (60% of those
// conclusive), and half of the attempted are approved by their township
// lead 1 to 24 hours after that. Each hour, every device sends one push
// and all pushes go at once, so the store's writer groups them. logf,
// when not nil, is told of each loaded day from 100,000 warnings on.
// Call it before AddCadres: it needs each village's only cadre.
func (c *City) LoadWarnings(ctx context.Context, clock *Clock, n int, logf func(format string, args ...any)) (Load, error) {
	start := time.Now()
	var ld Load
	if len(c.Cadres) > len(c.tree.Villages()) {
		return ld, errors.New("load warnings before adding cadres: the feed assigns a village's warnings only to its only cadre")
	}

	// The center user imports the feed, as the center's systems do.
	users, err := c.Store.UpsertUsers(ctx, c.Admin, []store.UserUpdate{{Username: demo.CenterUsername, Name: "市反诈中心", Unit: demo.CityCode, PasswordHash: "x"}})
	if err != nil {
		return ld, fmt.Errorf("center user: %w", err)
	}
	center := users[0].Actor(uuid.NewString())
	cadreOf := make(map[string]*Device, len(c.Cadres))
	for _, u := range c.Cadres {
		cadreOf[u.User.Unit] = u
	}

	tree := demo.City(1)
	now := time.Now()
	today := syncproto.DayStart(now)
	first := today.AddDate(0, 0, -Days)
	lastHour := now.Truncate(time.Hour)
	rnd := mrand.New(mrand.NewPCG(20, 24))
	// Attempts are drawn among village warnings so that attemptShare of all
	// warnings get one.
	pAttempt := attemptShare / 0.8
	var conclusive float64
	for _, o := range outcomes {
		if syncproto.Conclusive(o.outcome) {
			conclusive += float64(o.weight)
		}
	}
	pClose := closedShare * 100 / conclusive
	totalWeight := 0
	for _, o := range outcomes {
		totalWeight += o.weight
	}
	pickOutcome := func() int {
		u := rnd.IntN(totalWeight)
		for i, o := range outcomes {
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
		if day := int(hour.Sub(first) / (24 * time.Hour)); hour.Sub(first)%(24*time.Hour) == 0 && day < Days {
			perDay := n / Days
			if day == Days-1 {
				perDay = n - perDay*(Days-1)
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
		clock.Set(end)
		if len(rows) > 0 {
			t := time.Now()
			resp, err := c.Store.ImportFeed(ctx, center, rows)
			if err != nil {
				return ld, fmt.Errorf("import: %w", err)
			}
			ld.ImportTime += time.Since(t)
			if len(resp.Created) != len(rows) {
				return ld, fmt.Errorf("feed created %d of %d warnings: %+v", len(resp.Created), len(rows), resp.Invalid[:min(3, len(resp.Invalid))])
			}
			ld.Warnings += len(rows)
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
			ld.PhoneTail = rows[len(rows)-1].Warning.Phone[len(rows[len(rows)-1].Warning.Phone)-4:]
		}
		// The hour's attempts by each cadre and reviews by each lead, a
		// push per device, all at once so the writer groups them.
		clock.Add(5 * time.Minute)
		t := time.Now()
		byCadre := map[*Device][]pendingWork{}
		for _, p := range attempts[end] {
			byCadre[cadreOf[p.village]] = append(byCadre[cadreOf[p.village]], p)
		}
		delete(attempts, end)
		byLead := map[*Device][]pendingWork{}
		for _, p := range reviews[end] {
			lead := c.Leads[syncproto.ParentCode(p.village)]
			byLead[lead] = append(byLead[lead], p)
		}
		delete(reviews, end)
		var mu sync.Mutex
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		at := clock.Now().Add(-2 * time.Minute)
		for u, work := range byCadre {
			ops := make([]syncproto.Op, len(work))
			for i, p := range work {
				o := outcomes[p.outcome]
				reached := o.reached
				var loss int64
				if o.outcome == syncproto.OutcomeAlreadyDefrauded {
					loss = int64(1+u.Rnd.IntN(5000)) * 100
				}
				u.Seq++
				ops[i] = syncproto.Op{
					ID: UUID(u.Rnd), ClientSeq: u.Seq, Type: syncproto.OpRecorded, WarningID: p.id, At: at,
					Body: syncproto.OpBody{
						AttemptID: UUID(u.Rnd), Method: o.method, Reached: &reached, Outcome: o.outcome, LossFen: loss,
						Notes:    Notes[u.Rnd.IntN(len(Notes))],
						Location: &syncproto.Location{Lat: 34.02 + u.Rnd.Float64()/10, Lng: 113.82 + u.Rnd.Float64()/10, Accuracy: 15},
					},
				}
			}
			wg.Go(func() {
				results, err := pushAll(ctx, c.Store, u.Actor, ops)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ld.Attempts += len(ops)
				for i, p := range work {
					if !syncproto.Conclusive(outcomes[p.outcome].outcome) || rnd.Float64() >= pClose {
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
				lead.Seq++
				ops[i] = syncproto.Op{
					ID: UUID(lead.Rnd), ClientSeq: lead.Seq, Type: syncproto.OpReviewed, WarningID: p.id,
					BaseVersion: p.version, At: at, Body: syncproto.OpBody{Decision: syncproto.DecisionApprove},
				}
			}
			wg.Go(func() {
				if _, err := pushAll(ctx, c.Store, lead.Actor, ops); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				ld.Reviews += len(ops)
				mu.Unlock()
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			return ld, *err
		}
		ld.PushTime += time.Since(t)
		if h := hour.In(syncproto.Beijing); h.Hour() == 23 && n >= 100_000 && logf != nil {
			logf("loaded %s: %d warnings, %d attempts, %d reviews in %v", h.Format(time.DateOnly), ld.Warnings, ld.Attempts, ld.Reviews, time.Since(start).Round(time.Second))
		}
	}
	for code, k := range townships {
		if k > townships[ld.Township] || (k == townships[ld.Township] && code < ld.Township) {
			ld.Township = code
		}
	}
	ld.Total = time.Since(start)
	return ld, nil
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
