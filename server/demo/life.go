package demo

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The life of one warning in History, from the feed to the lead's
// approval. The shares are chosen to look like a county's field reports;
// none is a measured figure.
const (
	// directShare of the warnings at a county go straight to a village.
	directShare = 0.3
	// lateShare of the warnings are first worked after their deadline.
	lateShare = 0.03
	// offlineShare of the attempts reach the server late, the phone
	// having been out of signal.
	offlineShare = 0.15
	// escalateRefusedShare of the people who refuse to listen are
	// escalated before a second attempt.
	escalateRefusedShare = 0.6
	// thirdTryShare of the people unreachable twice are reached a third
	// time, after an escalation; the rest stay unreachable, open, and
	// go overdue.
	thirdTryShare = 0.7
	// returnShare of the resolved warnings a lead returns to be redone.
	returnShare = 0.08
	// A county answers a request for help answerAfter to
	// answerAfter+answerSpread of office hours after it.
	answerAfter  = time.Hour
	answerSpread = 4 * time.Hour
)

// Outcomes of a first and of a second attempt, in percent.
var (
	firstOutcomes = []outcomeWeight{
		{syncproto.OutcomeDissuaded, 52}, {syncproto.OutcomeUnreachable, 23}, {syncproto.OutcomeNotTarget, 9},
		{syncproto.OutcomeAlreadyDefrauded, 8}, {syncproto.OutcomeRefused, 8},
	}
	secondOutcomes = []outcomeWeight{
		{syncproto.OutcomeDissuaded, 70}, {syncproto.OutcomeUnreachable, 12}, {syncproto.OutcomeNotTarget, 10},
		{syncproto.OutcomeAlreadyDefrauded, 8},
	}
	// afterRefusal: a second try with the police, or the money is gone.
	afterRefusal = []outcomeWeight{{syncproto.OutcomeDissuaded, 75}, {syncproto.OutcomeAlreadyDefrauded, 25}}
	methods      = []outcomeWeight{{syncproto.MethodPhone, 55}, {syncproto.MethodVisit, 35}, {syncproto.MethodVideo, 10}}
)

type outcomeWeight struct {
	name   string
	weight int
}

func draw(r *rand.Rand, ws []outcomeWeight) string {
	return pickWeighted(r, ws, func(w outcomeWeight) int { return w.weight }).name
}

// history collects the events of History.
type history struct {
	r *rand.Rand
	// answers draws the county's answers, apart from r so that they
	// leave the rest of the history as it was without them.
	answers *rand.Rand
	now     time.Time
	cadres  map[string][]string // usernames by village
	events  []Event
}

func newHistory(tree *Tree, now time.Time, r, answers *rand.Rand) *history {
	h := &history{r: r, answers: answers, now: now, cadres: map[string][]string{}}
	for _, u := range tree.Users {
		if syncproto.UnitLevel(u.Unit) == syncproto.RoleVillage {
			h.cadres[u.Unit] = append(h.cadres[u.Unit], u.Username)
		}
	}
	return h
}

// story is one warning's events as they are planned; those after now are
// left out, and with them everything after.
type story struct {
	h       *history
	warning string
	last    time.Time
	ended   bool
}

// add appends an op by actor received at at, made on the phone or at the
// desk at device (zero: at at). It keeps a warning's events at least a
// minute apart.
func (s *story) add(at, device time.Time, actor string, op syncproto.Op) time.Time {
	at = latest(at, s.last.Add(time.Minute)).Truncate(time.Second)
	if device.IsZero() || device.After(at) {
		device = at
	}
	s.last = at
	if s.ended || at.After(s.h.now) {
		s.ended = true
		return at
	}
	op.At = device.UTC()
	s.h.events = append(s.h.events, Event{At: at.UTC(), Actor: actor, Warning: s.warning, Op: op})
	return at
}

// live plans the life of warning f, whose address is in village, imported
// at received.
func (h *history) live(f syncproto.FeedWarning, village string, received time.Time) {
	r := h.r
	s := &story{h: h, warning: f.ExternalID, last: received}
	limit := syncproto.DefaultDeadlines[f.Risk]
	deadline := f.WarnedAt.Add(limit)
	township := syncproto.ParentCode(village)
	county := syncproto.ParentCode(township)
	cadres := h.cadres[village]
	if len(cadres) == 0 {
		return
	}
	cadre := cadres[r.IntN(len(cadres))]

	// Who passes it on before a cadre holds it: a village with one cadre
	// has the warning assigned in the same step as it arrives there.
	type step struct {
		actor string
		op    syncproto.Op
	}
	var steps []step
	dispatch := func(actor, unit string) {
		steps = append(steps, step{actor, syncproto.Op{Type: syncproto.OpDispatched, Body: syncproto.OpBody{Unit: unit}}})
	}
	unit := f.Unit
	if unit == CityCode {
		dispatch(CenterUsername, county)
		unit = county
	}
	if unit == county {
		if r.Float64() < directShare {
			dispatch(CountyUsername(county), village)
			unit = village
		} else {
			dispatch(CountyUsername(county), township)
			unit = township
		}
	}
	lead := LeadUsername(township)
	if unit == township && len(cadres) == 1 && r.IntN(2) == 0 {
		dispatch(lead, village)
	} else if unit == township || len(cadres) > 1 {
		steps = append(steps, step{lead, syncproto.Op{Type: syncproto.OpAssigned, Body: syncproto.OpBody{Assignee: cadre}}})
	}

	// The first attempt, inside the deadline unless this one is late; the
	// steps before it spread over the time from the import.
	late := r.Float64() < lateShare
	// Most are reached early in their time: a tenth of it to four fifths,
	// a quarter of it or less half the time.
	u := r.Float64()
	first := f.WarnedAt.Add(time.Duration((0.1 + 0.7*u*u) * float64(limit)))
	if late {
		first = deadline.Add(10*time.Minute + time.Duration(r.Float64()*float64(limit/2)))
	}
	first = latest(first, received.Add(time.Duration(len(steps)+1)*5*time.Minute))
	slot := first.Sub(received) / time.Duration(len(steps)+1)
	for k, st := range steps {
		s.add(received.Add(slot*time.Duration(k)+time.Duration((0.3+0.6*r.Float64())*float64(slot))), time.Time{}, st.actor, st.op)
	}

	// Attempts until the warning is resolved or given up, each before
	// the deadline unless late.
	due := func(from time.Time) time.Time {
		if late || !from.Before(deadline) {
			return from.Add(30*time.Minute + time.Duration(r.Float64()*float64(3*time.Hour)))
		}
		return from.Add(time.Duration((0.3 + 0.5*r.Float64()) * float64(deadline.Sub(from))))
	}
	outcome := draw(r, firstOutcomes)
	at := s.attempt(cadre, first, outcome, late, deadline)
	switch outcome {
	case syncproto.OutcomeRefused:
		if r.Float64() < escalateRefusedShare {
			at = s.escalate(at.Add(time.Duration(2+r.IntN(20))*time.Minute), cadre, county, refusedReasons, refusedAnswers)
		}
		outcome = draw(r, afterRefusal)
		at = s.attempt(cadre, due(at), outcome, late, deadline)
	case syncproto.OutcomeUnreachable:
		outcome = draw(r, secondOutcomes)
		at = s.attempt(cadre, due(at), outcome, late, deadline)
		if outcome == syncproto.OutcomeUnreachable {
			at = s.escalate(at.Add(time.Duration(5+r.IntN(60))*time.Minute), cadre, county, unreachableReasons, unreachableAnswers)
			if r.Float64() >= thirdTryShare {
				return // nobody reaches them: open, and overdue once past the deadline
			}
			outcome = syncproto.OutcomeDissuaded
			at = s.attempt(cadre, at.Add(2*time.Hour+time.Duration(r.Float64()*float64(18*time.Hour))), outcome, true, deadline)
		}
	}

	// The township lead reviews in office hours, within a working day;
	// sometimes returns it with a reason, and the cadre redoes it.
	at = officeHours(r, at.Add(30*time.Minute+time.Duration(r.Float64()*float64(6*time.Hour))))
	if r.Float64() < returnShare {
		at = s.add(at, time.Time{}, lead, syncproto.Op{Type: syncproto.OpReviewed,
			Body: syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: pick(r, returnReasons)}})
		redo := at.Add(30*time.Minute + time.Duration(r.Float64()*float64(5*time.Hour)))
		at = s.redo(cadre, redo, outcome)
		at = officeHours(r, at.Add(30*time.Minute+time.Duration(r.Float64()*float64(6*time.Hour))))
	}
	s.add(at, time.Time{}, lead, syncproto.Op{Type: syncproto.OpReviewed,
		Body: syncproto.OpBody{Decision: syncproto.DecisionApprove, Comment: pick(r, approveComments)}})
}

// officeHours is t when it falls in a lead's office hours, 08:30 to
// 18:00 Beijing time; otherwise a time in the first hour and a half of the
// next ones. Work done overnight waits for review in the morning.
func officeHours(r *rand.Rand, t time.Time) time.Time {
	day := syncproto.DayStart(t)
	open, closing := day.Add(8*time.Hour+30*time.Minute), day.Add(18*time.Hour)
	if !t.Before(open) && t.Before(closing) {
		return t
	}
	if !t.Before(closing) {
		open = open.AddDate(0, 0, 1)
	}
	return open.Add(time.Duration(r.Float64() * float64(90*time.Minute)))
}

// officeTime is d of office hours after t: a request made in the evening
// is read in the morning, and one the day's office hours cannot finish
// carries over to the next. d is less than a day's office hours.
func officeTime(r *rand.Rand, t time.Time, d time.Duration) time.Time {
	t = officeHours(r, t)
	closing := syncproto.DayStart(t).Add(18 * time.Hour)
	if t.Add(d).Before(closing) {
		return t.Add(d)
	}
	next := syncproto.DayStart(t).AddDate(0, 0, 1).Add(8*time.Hour + 30*time.Minute)
	return next.Add(d - closing.Sub(t))
}

// attempt records a cadre's attempt made at device time, and returns when
// the server heard of it: at once, or hours later for a phone that was
// out of signal, though before the deadline when the attempt was (unless
// late).
func (s *story) attempt(cadre string, device time.Time, outcome string, late bool, deadline time.Time) time.Time {
	r := s.h.r
	device = latest(device, s.last.Add(time.Minute))
	received := device.Add(time.Duration(r.IntN(180)) * time.Second)
	if r.Float64() < offlineShare {
		received = device.Add(20*time.Minute + time.Duration(r.Float64()*float64(100*time.Minute)))
	}
	if !late && device.Before(deadline.Add(-2*time.Minute)) {
		received = earliest(received, deadline.Add(-time.Minute))
	}
	return s.add(received, device, cadre, attemptOp(r, outcome, pick(r, attemptNotes[outcome])))
}

// redo records the attempt a returned warning asks for, with the outcome
// it had.
func (s *story) redo(cadre string, at time.Time, outcome string) time.Time {
	r := s.h.r
	op := attemptOp(r, outcome, pick(r, redoNotes))
	op.Body.Method = syncproto.MethodVisit
	return s.add(at, time.Time{}, cadre, op)
}

// attemptOp is a dissuasion.recorded op with outcome; a loss, when the
// person was defrauded, of 2,000 to 300,000 yuan, most of it small.
func attemptOp(r *rand.Rand, outcome, notes string) syncproto.Op {
	reached := outcome != syncproto.OutcomeUnreachable
	var loss int64
	if outcome == syncproto.OutcomeAlreadyDefrauded {
		yuan := math.Exp(math.Log(2000) + r.Float64()*(math.Log(300_000)-math.Log(2000)))
		loss = int64(math.Round(yuan/100)) * 100 * 100
	}
	return syncproto.Op{Type: syncproto.OpRecorded, Body: syncproto.OpBody{
		Method: draw(r, methods), Reached: &reached, Outcome: outcome, LossFen: loss, Notes: notes,
	}}
}

// escalate records the cadre's request for help at at, with one of
// reasons, and plans the county's answer (escalation.answered, one of
// answers) a few hours later in office hours. The answer is not part of
// the story's sequence: the cadre goes on working meanwhile, and the
// answer does not hold back the next attempt. An answer still due at now
// is left out, so the county's queue holds the recent requests only.
func (s *story) escalate(at time.Time, cadre, county string, reasons, answers []string) time.Time {
	at = s.add(at, time.Time{}, cadre, syncproto.Op{Type: syncproto.OpEscalated, Body: syncproto.OpBody{Reason: pick(s.h.r, reasons)}})
	r := s.h.answers
	answered := officeTime(r, at, answerAfter+time.Duration(r.Float64()*float64(answerSpread))).Truncate(time.Second)
	answer := pick(r, answers)
	if s.ended || answered.After(s.h.now) {
		return at
	}
	s.h.events = append(s.h.events, Event{At: answered.UTC(), Actor: CountyUsername(county), Warning: s.warning,
		Op: syncproto.Op{Type: syncproto.OpAnswered, At: answered.UTC(), Body: syncproto.OpBody{Answer: answer}}})
	return at
}
