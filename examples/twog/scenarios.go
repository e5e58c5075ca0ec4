package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/pause"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Each scenario is bounded by its own deadline, far above any time it
// should take, so a sync that never ends is a FAIL line, not a hang.
const scenarioLimit = 30 * time.Minute

// The links of the scenarios at -speedup 1.
const (
	cadreRate  = 64_000 // bits a second, both ways
	cadreRTT   = 800 * time.Millisecond
	countyRate = 50_000
	countyRTT  = 1500 * time.Millisecond
	cutEvery   = 40_000 // bytes, both ways together
	// countyTarget is the county lead's first sync at -scale 1.
	countyTarget = 60 * time.Second
	// The outage targets: from the link's return to the op confirmed.
	outageTargetNotified = 5 * time.Second
	outageTargetAlone    = 60 * time.Second
	// outageInterval is background sync's interval in scenario 5: long,
	// so only the outage's own events (the op, the network's return, the
	// backoff) start a sync.
	outageInterval = 30 * time.Minute
)

// 1. The first sync of a village cadre's new phone in the morning.
func (e *env) cadreMorning(ctx context.Context) ([]*result, error) {
	r := &result{id: "1", title: "cadre's first sync", target: "completes"}
	ph, err := e.openPhone(ctx, "cadre-morning", e.cadre, e.cfg.seed*10+1)
	if err != nil {
		return nil, err
	}
	r.link = e.link(cadreRate, cadreRate, cadreRTT)
	if err := ph.shape(r.link); err != nil {
		return nil, err
	}
	e.progress("1: %s's first sync at %s ...\n", e.cadre.Username, linkString(r.link))
	e.timedSync(ctx, r, ph)
	n := len(ph.sdk.Warnings(clientsdk.Filter{}))
	r.line("%d warnings on the phone (%d assigned to %s on the server); %s of pull bodies after gzip is undone",
		n, e.work.cadre, e.cadre.Username, kb(r.reqs.pullBytes))
	if n > 0 {
		r.line("%d B per warning on the wire (bytes down over warnings)", r.stats.BytesDown/int64(n))
	}
	return []*result{r}, nil
}

// timedSync runs one measured Sync on ph into r.
func (e *env) timedSync(ctx context.Context, r *result, ph *phone) clientsdk.Report {
	ctx, cancel := context.WithTimeout(ctx, scenarioLimit)
	defer cancel()
	start := time.Now()
	rep, err := ph.sdk.Sync(ctx)
	r.wall = time.Since(start)
	r.stats, r.reqs = ph.proxy.Stats(), ph.count.snapshot()
	r.done = err == nil
	if err != nil {
		r.fail("sync: %v", err)
	}
	r.line("sync report: %d changes pulled, %d pushed, %d tries", rep.Pulled, rep.Pushed, rep.Attempts)
	return rep
}

// 2. A cadre's day of attempts and photos sent over a link that drops
// every 40 KB, synced until nothing is pending.
func (e *env) dayOfAttempts(ctx context.Context) ([]*result, error) {
	s := e.size
	r := &result{id: "2", title: fmt.Sprintf("%d attempts, %d with a %d KiB photo", s.attempts, s.photos, s.photoBytes>>10),
		target: "everything sent; each attempt and photo on the server once"}
	ph, err := e.openPhone(ctx, "cadre-day", e.cadre, e.cfg.seed*10+2)
	if err != nil {
		return nil, err
	}
	// The morning's sync, not measured: the phone holds the warnings.
	if _, err := ph.sdk.Sync(ctx); err != nil {
		return nil, fmt.Errorf("first sync: %w", err)
	}
	targets := openFirst(ph.sdk.Warnings(clientsdk.Filter{}))
	if len(targets) == 0 {
		return nil, errors.New("the cadre holds no warning")
	}
	rng := rand.New(rand.NewPCG(uint64(e.cfg.seed), 2))
	dir := filepath.Join(e.srv.TempDir, "photos")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var ids []string
	photoBytes := 0
	every := s.attempts / s.photos
	for i := range s.attempts {
		w := targets[i%len(targets)]
		a := clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded,
			Notes:    attemptNotes(rng, syncproto.MethodVisit, syncproto.OutcomeDissuaded, 0),
			Location: &syncproto.Location{Lat: 33.95 + 0.2*rng.Float64(), Lng: 113.75 + 0.25*rng.Float64(), Accuracy: float64(4 + rng.IntN(60))}}
		if i%every == 0 && i/every < s.photos {
			p := fakePhoto(rng, s.photoBytes)
			path := filepath.Join(dir, p.sum[:16]+".jpg")
			if err := os.WriteFile(path, p.data, 0o600); err != nil {
				return nil, err
			}
			a.Photos = []string{path}
			photoBytes += len(p.data)
		}
		if _, err := ph.sdk.RecordAttempt(w.ID, a); err != nil {
			return nil, fmt.Errorf("record attempt: %w", err)
		}
		ids = append(ids, w.ID)
	}
	r.link = e.link(cadreRate, cadreRate, cadreRTT)
	r.link.CutAfter = cutEvery
	if err := ph.shape(r.link); err != nil {
		return nil, err
	}
	e.progress("2: %d attempts and %d photos (%s) at %s ...\n", s.attempts, s.photos, kb(int64(photoBytes)), linkString(r.link))

	sctx, cancel := context.WithTimeout(ctx, scenarioLimit)
	defer cancel()
	const maxSyncs = 200
	syncs, failed := 0, 0
	var lastErr error
	start := time.Now()
	for st := ph.sdk.Status(); st.Pending > 0 || st.PhotosPending > 0; st = ph.sdk.Status() {
		if syncs == maxSyncs || sctx.Err() != nil {
			r.fail("still %d ops and %d photos pending after %d syncs (last error: %v)", st.Pending, st.PhotosPending, syncs, lastErr)
			break
		}
		// As an app's sync button or a loop without backoff: the SDK's
		// own retries and piece sizing are what is measured.
		if _, err := ph.sdk.Sync(sctx); err != nil {
			failed++
			lastErr = err
		}
		syncs++
	}
	r.wall = time.Since(start)
	r.stats, r.reqs = ph.proxy.Stats(), ph.count.snapshot()
	st := ph.sdk.Status()
	r.done = st.Pending == 0 && st.PhotosPending == 0
	r.line("%d syncs, %d of them ended in an error (the last: %v)", syncs, failed, lastErr)
	up := r.stats.BytesUp
	r.line("photos %s; the link carried %s up, %.2f times the photos", kb(int64(photoBytes)), kb(up), float64(up)/float64(max(1, photoBytes)))

	// Once each, on the server: the attempts this device made, and the
	// photos they name.
	seen := map[string]int{}
	photos := map[string]int{}
	for _, id := range uniq(ids) {
		w, err := e.srv.Store.Warning(id)
		if err != nil {
			return nil, fmt.Errorf("warning on the server: %w", err)
		}
		for _, a := range w.Attempts {
			if a.DeviceID != ph.sdk.DeviceID() {
				continue
			}
			seen[a.ID]++
			for _, p := range a.Photos {
				meta, err := e.srv.Store.BlobMeta(p)
				if err != nil {
					return nil, fmt.Errorf("photo on the server: %w", err)
				}
				if meta != nil {
					photos[p]++
				}
			}
		}
	}
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	for _, n := range photos {
		if n > 1 {
			twice++
		}
	}
	r.line("server holds %d of %d attempts and %d of %d photos; %d of them more than once",
		len(seen), s.attempts, len(photos), s.photos, twice)
	if len(seen) != s.attempts || len(photos) != s.photos || twice > 0 {
		r.fail("the server holds %d attempts and %d photos (%d twice), want %d and %d once each", len(seen), len(photos), twice, s.attempts, s.photos)
	}
	return []*result{r}, nil
}

// openFirst orders warnings open ones first (a day's attempts go to work
// still to do), then by id, so the choice is the same in every run.
func openFirst(ws []clientsdk.Warning) []clientsdk.Warning {
	slices.SortFunc(ws, func(a, b clientsdk.Warning) int {
		ca, cb := a.Status == syncproto.WarningClosed, b.Status == syncproto.WarningClosed
		switch {
		case ca && !cb:
			return 1
		case cb && !ca:
			return -1
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return ws
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// The leads of scenarios 3 and 4.
type leadKind int

const (
	leadTownship leadKind = iota
	leadCounty
)

// 3 and 4. A lead's first sync of their whole scope.
func (e *env) leadFirstSync(ctx context.Context, kind leadKind) ([]*result, error) {
	r := &result{id: "3", title: "township lead's first sync", target: "completes"}
	u, scope, link := e.townshipLead, e.work.township, e.link(cadreRate, cadreRate, cadreRTT)
	var limit time.Duration
	if kind == leadCounty {
		// The target is for 2,500 warnings at 50 kbit/s: scaled with
		// the sizes and the link.
		limit = time.Duration(float64(countyTarget) * e.cfg.scale / e.cfg.speedup)
		r = &result{id: "4", title: "county lead's first sync", target: "under " + seconds(limit)}
		u, scope, link = e.countyLead, e.work.county, e.link(countyRate, countyRate, countyRTT)
	}
	ph, err := e.openPhone(ctx, "lead-"+r.id, u, e.cfg.seed*10+int64(3+kind))
	if err != nil {
		return nil, err
	}
	r.link = link
	if err := ph.shape(r.link); err != nil {
		return nil, err
	}
	ph.count.mu.Lock()
	ph.count.keep = kind == leadCounty
	ph.count.mu.Unlock()
	e.progress("%s: %s's first sync of about %d warnings at %s ...\n", r.id, u.Username, scope, linkString(r.link))
	e.timedSync(ctx, r, ph)
	n := len(ph.sdk.Warnings(clientsdk.Filter{}))
	r.line("%d warnings on the phone (%d in scope on the server); %d pages", n, scope, r.reqs.byKind["pull"])
	if n > 0 {
		r.line("per warning: %d B on the wire (bytes down over warnings), %d B of MessagePack before gzip (%.1f times the wire)",
			r.stats.BytesDown/int64(n), r.reqs.pullBytes/int64(n), float64(r.reqs.pullBytes)/float64(max(1, r.stats.BytesDown)))
	}
	if kind == leadCounty {
		if r.done && r.wall >= limit {
			r.fail("took %s, target under %s", seconds(r.wall), seconds(limit))
		}
		ph.count.mu.Lock()
		pages := ph.count.pages
		ph.count.mu.Unlock()
		lines, err := pageFields(pages)
		if err != nil {
			r.line("page fields: %v", err)
		}
		r.lines = append(r.lines, lines...)
	}
	return []*result{r}, nil
}

// 5. The first sync after an outage, with background sync on and an op
// made during it: once with the app telling the SDK the network is back,
// once without. Both phones live the same outage side by side, each on a
// link of its own.
func (e *env) outageScenario(ctx context.Context) ([]*result, error) {
	link := e.link(cadreRate, cadreRate, cadreRTT)
	out := e.cfg.outage
	rs := []*result{
		{id: "5a", title: fmt.Sprintf("op after a %v outage, NetworkAvailable", out), target: "confirmed within " + seconds(outageTargetNotified), noRatio: true, link: link},
		{id: "5b", title: fmt.Sprintf("op after a %v outage, no notice", out), target: "confirmed within " + seconds(outageTargetAlone), noRatio: true, link: link},
	}
	var phones [2]*phone
	for i := range phones {
		ph, err := e.openPhone(ctx, "outage-"+rs[i].id, e.outageCadres[i], e.cfg.seed*10+5+int64(i))
		if err != nil {
			return nil, err
		}
		phones[i] = ph
		events, stop := ph.syncEvents()
		ph.sdk.StartBackgroundSync(outageInterval)
		// Its first sync, at once, not measured.
		select {
		case <-events:
		case <-time.After(5 * time.Minute):
			stop()
			return nil, fmt.Errorf("%s: background sync never synced", ph.name)
		}
		stop()
		if err := ph.sdk.Status().LastError; err != nil {
			return nil, fmt.Errorf("%s: first sync: %w", ph.name, err)
		}
		if err := ph.shape(link); err != nil {
			return nil, err
		}
	}
	gone := link
	gone.BlackHole = true
	for _, ph := range phones {
		if err := ph.proxy.SetLink(gone); err != nil {
			return nil, err
		}
	}
	began := time.Now()
	opAt := min(30*time.Second, out/4)
	e.progress("5: the link is gone for %v; an op is made %v into it ...\n", out, opAt)
	if err := pause.For(ctx, opAt); err != nil {
		return nil, err
	}
	var warnings [2]string
	for i, ph := range phones {
		ws := openFirst(ph.sdk.Warnings(clientsdk.Filter{}))
		if len(ws) == 0 {
			return nil, fmt.Errorf("%s holds no warning", ph.name)
		}
		warnings[i] = ws[0].ID
		a := clientsdk.Attempt{Method: syncproto.MethodPhone, Outcome: syncproto.OutcomeUnreachable, Notes: "电话无人接听，明日再次联系。"}
		if _, err := ph.sdk.RecordAttempt(warnings[i], a); err != nil {
			return nil, err
		}
	}
	if err := pause.For(ctx, time.Until(began.Add(out))); err != nil {
		return nil, err
	}
	for i, ph := range phones {
		st, reqs := ph.proxy.Stats(), ph.count.snapshot()
		rs[i].line("during the outage: %d requests tried (%d failed without an answer), %d connections opened", reqs.total, reqs.failed, st.Conns)
		ph.proxy.ResetStats()
		ph.count.reset()
	}

	// The link is back, on a new address as after most outages of this
	// length: the connections of before never move again (Strand).
	for _, ph := range phones {
		ph.proxy.Strand()
		if err := ph.proxy.SetLink(link); err != nil {
			return nil, err
		}
	}
	back := time.Now()
	phones[0].sdk.NetworkAvailable()
	e.progress("5: the link is back ...\n")
	confirmed := make(chan int, len(phones))
	for i, ph := range phones {
		go func() {
			defer func() { confirmed <- i }()
			for ph.sdk.Status().Pending > 0 && time.Since(back) < scenarioLimit/6 && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			r := rs[i]
			r.wall = time.Since(back)
			r.stats, r.reqs = ph.proxy.Stats(), ph.count.snapshot()
			r.done = ph.sdk.Status().Pending == 0
		}()
	}
	for range phones {
		<-confirmed
	}
	for i, ph := range phones {
		ph.sdk.StopBackgroundSync()
		r := rs[i]
		limit := []time.Duration{outageTargetNotified, outageTargetAlone}[i]
		if r.done && r.wall > limit {
			r.fail("confirmed %s after the link's return, target within %s", seconds(r.wall), seconds(limit))
		}
		w, err := e.srv.Store.Warning(warnings[i])
		if err != nil {
			return nil, fmt.Errorf("warning on the server: %w", err)
		}
		n := 0
		for _, a := range w.Attempts {
			if a.DeviceID == ph.sdk.DeviceID() {
				n++
			}
		}
		r.line("wall is from the link's return to the op confirmed (it left the outbox); the server holds it %d time(s)", n)
		if n != 1 {
			r.fail("the server holds the op %d times, want once", n)
		}
	}
	return rs, nil
}
