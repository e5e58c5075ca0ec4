package main

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/workpool"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

const cityCode = demo.CityCode

// Chances of what people do on one turn, for a day of about 60 rounds:
// by its end most warnings are resolved and many closed, and some are
// still open, overdue, or waiting for review.
const (
	// A phone records an attempt on one of its open warnings, and
	// sometimes on a second one.
	recordChance = 0.08
	secondChance = 0.1
	// A phone with nothing to send still syncs now and then.
	idleSyncChance = 0.5
	// A phone with signal loses it while a sync request is in flight.
	loseReplyChance = 0.05
	// A lead handles a warning waiting for them on this turn.
	leadActChance = 0.35
	// A township lead reviews a resolved warning on this turn.
	reviewChance = 0.15
	// A lead approves resolved work; otherwise returns it to be redone.
	approveChance         = 0.85
	approveReturnedChance = 0.95
)

// simulate runs -rounds rounds of turns spread over -duration: in each
// round every lead and phone takes one turn, on -workers goroutines.
func (s *sim) simulate(ctx context.Context) error {
	start := time.Now()
	deadline := start.Add(s.cfg.duration)
	actors := append(append([]*actor(nil), s.leads...), s.phones...)
	rng := mrand.New(mrand.NewPCG(uint64(s.cfg.seed), 0x63697479)) // "city"
	lastNote := start
	rounds := 0
	tick := s.cfg.duration / time.Duration(s.cfg.rounds)
	for rounds < s.cfg.rounds && time.Now().Before(deadline) {
		// Each round has its slot of the day: a fast machine waits for
		// it, so the day's figures do not depend on the machine's speed.
		if wait := time.Until(start.Add(time.Duration(rounds) * tick)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		order := rng.Perm(len(actors))
		err := workpool.Run(s.cfg.workers, len(order), func(i int) error {
			a := actors[order[i]]
			if a.role == syncproto.RoleVillage {
				return s.phoneTurn(ctx, a)
			}
			return s.leadTurn(ctx, a)
		})
		if err != nil {
			return err
		}
		rounds++
		if time.Since(lastNote) >= 2*time.Second {
			lastNote = time.Now()
			s.progress("%5.1fs round %d: %s; %d phones without signal\n", time.Since(start).Seconds(), rounds, s.opSummary(), s.offlineCount())
		}
	}
	s.timing.day = time.Since(start)
	s.rounds = rounds
	s.progress("the day ends after %d rounds in %v: %s\n", rounds, s.timing.day.Round(time.Millisecond), s.opSummary())
	return nil
}

// phoneTurn is one turn of a village cadre: the signal comes or goes, they
// may record an attempt on an open warning, and the phone syncs.
func (s *sim) phoneTurn(ctx context.Context, a *actor) error {
	a.turns++
	switch {
	case a.offTurns > 0:
		if a.offTurns--; a.offTurns == 0 {
			a.radio.offline.Store(false)
		}
	case a.radio.offline.Load():
		// The signal went in the middle of the last sync.
		a.offTurns = 1 + a.rng.IntN(3)
		a.offlinePeriods++
	case a.rng.Float64() < s.cfg.offline:
		a.radio.offline.Store(true)
		a.offTurns = 1 + a.rng.IntN(4)
		a.offlinePeriods++
	}

	if a.rng.Float64() < recordChance {
		n := 1
		if a.rng.Float64() < secondChance {
			n = 2
		}
		for range n {
			if err := s.recordAttempt(a); err != nil {
				return err
			}
		}
	}

	if a.sdk.Status().Pending == 0 && a.rng.Float64() >= idleSyncChance {
		return nil
	}
	if !a.radio.offline.Load() && a.rng.Float64() < loseReplyChance {
		a.radio.loseReply.Store(true)
	}
	s.sync(ctx, a)
	a.radio.loseReply.Store(false)
	return nil
}

// sync syncs a device and settles its tracked ops; failing is normal
// without signal.
func (s *sim) sync(ctx context.Context, a *actor) {
	a.syncs++
	if _, err := a.sdk.Sync(ctx); err != nil {
		a.syncFailures++
	}
	a.tracked = s.ledger.settle(a, s.cadres)
}

// recordAttempt picks an open warning on the phone, most urgent first
// mostly, and records what the cadre did.
func (s *sim) recordAttempt(a *actor) error {
	open := a.sdk.Warnings(clientsdk.Filter{Status: []string{syncproto.WarningAssigned, syncproto.WarningInProgress}})
	if len(open) == 0 {
		return nil
	}
	w := open[0]
	if a.rng.Float64() >= 0.7 {
		w = open[a.rng.IntN(len(open))]
	}
	att := drawAttempt(a.rng, &w)
	st, err := a.sdk.RecordAttempt(w.ID, att)
	if err != nil {
		return fmt.Errorf("%s records an attempt: %w", a.username, err)
	}
	s.track(a, trackedOp{st: st, kind: syncproto.OpRecorded, attempt: att})
	return nil
}

func (s *sim) track(a *actor, t trackedOp) {
	s.ledger.made(t.kind)
	a.tracked = append(a.tracked, t)
}

// weighted is an outcome and its weight.
type weighted struct {
	outcome string
	weight  int
}

// Outcome weights: a first visit or call mostly dissuades; some people are
// unreachable and dissuaded on a later try; a few were already defrauded;
// some are not the target at all.
var (
	firstOutcomes = []weighted{
		{syncproto.OutcomeDissuaded, 58}, {syncproto.OutcomeUnreachable, 22}, {syncproto.OutcomeNotTarget, 8},
		{syncproto.OutcomeAlreadyDefrauded, 5}, {syncproto.OutcomeRefused, 7},
	}
	followUpOutcomes = []weighted{
		{syncproto.OutcomeDissuaded, 70}, {syncproto.OutcomeUnreachable, 12}, {syncproto.OutcomeNotTarget, 8},
		{syncproto.OutcomeAlreadyDefrauded, 6}, {syncproto.OutcomeRefused, 4},
	}
	// redoOutcomes follow a lead's return: the cadre goes back to confirm.
	redoOutcomes = []weighted{
		{syncproto.OutcomeDissuaded, 85}, {syncproto.OutcomeNotTarget, 5}, {syncproto.OutcomeAlreadyDefrauded, 4},
		{syncproto.OutcomeUnreachable, 6},
	}
)

var notes = map[string][]string{
	syncproto.OutcomeDissuaded: {
		"上门见到本人，讲解刷单返利骗局，本人表示不再转账并已卸载可疑APP。",
		"电话联系本人，告知所谓投资导师为诈骗分子，已劝阻并安装国家反诈中心APP。",
		"视频通话，本人正准备按“客服”要求转账，经劝阻已停止操作。",
		"与家属一同上门劝阻，本人认识到被骗风险，同意开启来电预警。",
	},
	syncproto.OutcomeUnreachable: {
		"电话无人接听，已发送预警短信，稍后再次联系。",
		"上门未见本人，邻居称其外出务工，已留联系方式。",
		"号码关机，联系家属未果，明日再访。",
	},
	syncproto.OutcomeRefused: {
		"本人拒绝沟通，称自己不会被骗，已告知家属留意。",
		"本人态度抵触，挂断电话，需再次上门。",
	},
	syncproto.OutcomeAlreadyDefrauded: {
		"本人已按对方要求转账，已陪同至派出所报案。",
		"本人已被骗，已告知保存聊天记录和转账凭证并报警。",
	},
	syncproto.OutcomeNotTarget: {
		"核实为号码错配，本人未接触相关诈骗信息。",
		"本人为正常网购客服来电，非预警对象。",
	},
}

// drawAttempt is what a cadre did about w: an outcome by how the warning
// stands, a method that fits it, and a loss when the person was already
// defrauded.
func drawAttempt(r *mrand.Rand, w *clientsdk.Warning) clientsdk.Attempt {
	table := firstOutcomes
	switch {
	case w.Status == syncproto.WarningInProgress:
		table = followUpOutcomes
	case len(w.Reviews) > 0:
		table = redoOutcomes
	}
	total := 0
	for _, o := range table {
		total += o.weight
	}
	u := r.IntN(total)
	outcome := table[0].outcome
	for _, o := range table {
		if u < o.weight {
			outcome = o.outcome
			break
		}
		u -= o.weight
	}
	a := clientsdk.Attempt{Outcome: outcome, Reached: outcome != syncproto.OutcomeUnreachable}
	switch m := r.IntN(100); {
	case outcome == syncproto.OutcomeUnreachable && m < 70, m < 30:
		a.Method = syncproto.MethodPhone
	case m < 80:
		a.Method = syncproto.MethodVisit
	case m < 95:
		a.Method = syncproto.MethodVideo
	default:
		a.Method = syncproto.MethodOther
	}
	if outcome == syncproto.OutcomeAlreadyDefrauded {
		// From a few hundred yuan to a few hundred thousand, most of it
		// small: about log-uniform.
		yuan := int64(200 * math.Pow(1500, r.Float64()))
		a.LossFen = yuan * 100
	}
	ns := notes[outcome]
	a.Notes = ns[r.IntN(len(ns))]
	a.Location = &syncproto.Location{Lat: 34.0 + r.Float64()*0.3, Lng: 113.5 + r.Float64()*0.6, Accuracy: 5 + r.Float64()*30}
	return a
}

// leadTurn is one turn of a county or township lead: sync, dispatch the
// warnings addressed to their own unit to the village the address names,
// (township leads) assign warnings at villages with two cadres and review
// resolved work, then sync what they did.
func (s *sim) leadTurn(ctx context.Context, a *actor) error {
	a.turns++
	s.sync(ctx, a)
	units := map[string]syncproto.Unit{}
	for _, u := range a.sdk.Units() {
		units[u.Code] = u
	}
	cadres := map[string][]syncproto.DirectoryUser{}
	for _, u := range a.sdk.Cadres() {
		if u.Active {
			cadres[u.Unit] = append(cadres[u.Unit], u)
		}
	}
	made := 0
	for _, w := range a.sdk.Warnings(clientsdk.Filter{}) {
		if len(w.Ops) > 0 || a.rng.Float64() >= leadActChance {
			continue
		}
		switch {
		case w.Unit == a.unit && (w.Status == syncproto.WarningNew || w.Status == syncproto.WarningDispatched):
			village := villageOf(w.Address, a.unit, units)
			if village == "" {
				continue // the address names no village here: cannot happen in the demo feed
			}
			st, err := a.sdk.Dispatch(w.ID, village)
			if err != nil {
				return fmt.Errorf("%s dispatches: %w", a.username, err)
			}
			s.track(a, trackedOp{st: st, kind: syncproto.OpDispatched, unit: village})
			made++
		case a.role == syncproto.RoleTownship && syncproto.UnitLevel(w.Unit) == syncproto.RoleVillage &&
			w.Assignee == "" && w.Status == syncproto.WarningDispatched && len(cadres[w.Unit]) > 0:
			c := cadres[w.Unit][a.rng.IntN(len(cadres[w.Unit]))]
			st, err := a.sdk.Assign(w.ID, c.ID)
			if err != nil {
				return fmt.Errorf("%s assigns: %w", a.username, err)
			}
			s.track(a, trackedOp{st: st, kind: syncproto.OpAssigned, assignee: c.ID})
			made++
		case a.role == syncproto.RoleTownship && w.Status == syncproto.WarningResolved && a.rng.Float64() < reviewChance:
			chance := approveChance
			if len(w.Reviews) > 0 {
				chance = approveReturnedChance
			}
			decision, kind, comment := syncproto.DecisionApprove, kindApprove, "核实无误，同意办结。"
			if a.rng.Float64() >= chance {
				decision, kind, comment = syncproto.DecisionReturn, kindReturn, returnComments[a.rng.IntN(len(returnComments))]
			}
			st, err := a.sdk.Review(w.ID, decision, comment)
			if err != nil {
				return fmt.Errorf("%s reviews: %w", a.username, err)
			}
			s.track(a, trackedOp{st: st, kind: kind})
			made++
		}
	}
	if made > 0 {
		s.sync(ctx, a)
	}
	return nil
}

var returnComments = []string{
	"劝阻记录过于简单，请补充与本人沟通的具体情况。",
	"请再次上门，当面确认本人已停止转账。",
	"请核实是否已安装国家反诈中心APP并开启预警。",
}

// villageOf is the village in scope that an address names: the demo
// feed's address starts with the township's and the village's names, even
// when the platform only knew the township or county.
func villageOf(address, scope string, units map[string]syncproto.Unit) string {
	for code, u := range units {
		if syncproto.UnitLevel(code) != syncproto.RoleVillage || !syncproto.InScope(scope, code) {
			continue
		}
		if t, ok := units[syncproto.ParentCode(code)]; ok && strings.HasPrefix(address, t.Name+u.Name) {
			return code
		}
	}
	return ""
}

// settle ends the day: every device comes back online and syncs until no
// device has anything to send and a whole round of syncs changed nothing
// more, then the center's SDK client syncs the whole city.
func (s *sim) settle(ctx context.Context) error {
	s.timing.settleStart = time.Now()
	all := append(append([]*actor(nil), s.leads...), s.phones...)
	for _, a := range all {
		a.offTurns = 0
		a.radio.loseReply.Store(false)
		a.radio.offline.Store(false)
	}
	quiet := 0
	var lastErr atomic.Pointer[error]
	for pass := 1; pass <= 20 && quiet < 2; pass++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var failed atomic.Int64
		_ = workpool.Run(s.cfg.workers, len(all), func(i int) error {
			a := all[i]
			if _, err := a.sdk.Sync(ctx); err != nil {
				failed.Add(1)
				err = fmt.Errorf("%s: %w", a.username, err)
				lastErr.Store(&err)
			}
			a.tracked = s.ledger.settle(a, s.cadres)
			return nil
		})
		pending := 0
		for _, a := range all {
			pending += a.sdk.Status().Pending + len(a.tracked)
		}
		// Two quiet passes: after the first every op is on the server,
		// after the second every device has pulled all of them.
		if failed.Load() == 0 && pending == 0 {
			quiet++
		} else {
			quiet = 0
		}
		s.progress("settling, pass %d: %d syncs failed, %d ops pending\n", pass, failed.Load(), pending)
	}
	if quiet < 2 {
		if p := lastErr.Load(); p != nil {
			return fmt.Errorf("devices did not settle after 20 passes: %w", *p)
		}
		return fmt.Errorf("devices did not settle after 20 passes")
	}
	if _, err := s.centerSDK.sdk.Sync(ctx); err != nil {
		return fmt.Errorf("final sync of the center: %w", err)
	}
	return nil
}

// opSummary is a short line of the ledger's op counts.
func (s *sim) opSummary() string {
	l := s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	get := func(k string) (int, int) {
		if c := l.ops[k]; c != nil {
			return c.made, c.applied
		}
		return 0, 0
	}
	am, aa := get(syncproto.OpRecorded)
	dm, da := get(syncproto.OpDispatched)
	sm, sa := get(syncproto.OpAssigned)
	pm, pa := get(kindApprove)
	rm, ra := get(kindReturn)
	return fmt.Sprintf("attempts %d/%d, dispatches %d/%d, assignments %d/%d, approvals %d/%d, returns %d/%d (applied/made)",
		aa, am, da, dm, sa, sm, pa, pm, ra, rm)
}

func (s *sim) offlineCount() int {
	n := 0
	for _, a := range s.phones {
		if a.radio.offline.Load() {
			n++
		}
	}
	return n
}
