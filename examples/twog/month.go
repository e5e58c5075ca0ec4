package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/examples/internal/cityload"
	"github.com/fieldsync/fieldsync/examples/internal/workpool"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A month of the county's work, so that what the leads and the cadre pull
// is shaped like the real thing: bytes on a 2G link are the point, and a
// warning's bytes grow with its attempts, notes, places, photos and
// reviews. Each of the 30 days before today, the center imports the day's
// feed (demo.Warnings: real-looking names, phones and addresses), then the
// county and township leads dispatch what came to them, the township leads
// assign what landed in villages with two cadres, cadres record attempts
// (some with photos, which they upload), and leads review. Every op goes
// through the real push API, so the server's log and states are the ones
// the phones would have made.

// monthDays is how many days of work the server holds.
const monthDays = 30

// Shares of the month's work, chosen to look like a county's field
// reports; none is a measured figure.
const (
	dispatchShare   = 0.9  // warnings above a village that a lead dispatches
	assignShare     = 0.95 // warnings in a two-cadre village that the lead assigns
	attemptShare    = 0.8  // assigned warnings with an attempt (fewer for the last days)
	conclusiveShare = 0.65 // first attempts that resolve the warning
	secondShare     = 0.55 // inconclusive first attempts followed by a second
	photoShare      = 0.3  // attempts with photos (one, sometimes two)
	uploadedShare   = 0.9  // photos that reached the server
	locationShare   = 0.85 // attempts with the phone's position
	approveShare    = 0.75 // resolved warnings a lead approves (the rest wait)
	returnShare     = 0.03 // resolved warnings a lead returns instead
	lateShare       = 0.02 // closed warnings a cadre records on afterwards
)

// monthStats counts what the month left on the server.
type monthStats struct {
	villages                                   int
	county, township, cadre                    int
	dispatches, assignments, attempts, reviews int
	withPhotos, photos, photosMissing, flags   int
	log, townshipChanges, countyChanges        int
}

// tracked is a warning as the simulation knows it.
type tracked struct {
	id       string
	village  string // the village its address names
	unit     string // where it stands now
	warnedAt time.Time
	last     time.Time // when the latest thing happened to it
	assignee *member
	version  uint64
	resolved bool
	closed   bool
	changes  int // log entries on it
}

// photo is a photo a cadre attached and will upload.
type photo struct {
	sum  string
	data []byte
}

type month struct {
	e      *env
	rng    *rand.Rand
	now    time.Time
	center *member
	county *member
	leads  map[string]*member   // by township code
	cadres map[string][]*member // by village code
	// trees are one-village demo trees, so demo.Warnings puts a village's
	// rows where the simulation wants them.
	trees    map[string]*demo.Tree
	perMonth map[string]float64 // feed rows a month, by village
	villages []string
	byOp     map[string]*tracked
	all      []*tracked
	stats    monthStats
}

func simulateMonth(ctx context.Context, e *env) (monthStats, error) {
	m := &month{e: e, rng: rand.New(rand.NewPCG(uint64(e.cfg.seed), 0x6d6f6e7468)), now: time.Now(),
		leads: map[string]*member{}, cadres: map[string][]*member{}, trees: map[string]*demo.Tree{},
		perMonth: map[string]float64{}, byOp: map[string]*tracked{}}
	if err := m.signIn(ctx); err != nil {
		return m.stats, err
	}
	m.plan()
	for d := monthDays; d >= 1; d-- {
		if err := m.day(ctx, d); err != nil {
			return m.stats, fmt.Errorf("day -%d of the month: %w", d, err)
		}
	}
	err := m.count()
	return m.stats, err
}

// signIn signs in, over loopback, everyone who works in the month: the
// center, the county lead, the township leads and every cadre of the
// county (an argon2id check each).
func (m *month) signIn(ctx context.Context) error {
	var people []syncproto.UserInput
	for _, u := range m.e.tree.Users {
		if u.Username == demo.CenterUsername || strings.HasPrefix(u.Unit, countyCode) {
			people = append(people, u)
		}
	}
	members := make([]*member, len(people))
	err := workpool.Run(4, len(people), func(i int) error {
		var err error
		if members[i], err = m.e.login(ctx, people[i]); err != nil {
			return fmt.Errorf("login %s: %w", people[i].Username, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range members {
		switch syncproto.UnitLevel(p.user.Unit) {
		case syncproto.RoleCenter:
			m.center = p
		case syncproto.RoleCounty:
			m.county = p
		case syncproto.RoleTownship:
			m.leads[p.user.Unit] = p
		case syncproto.RoleVillage:
			m.cadres[p.user.Unit] = append(m.cadres[p.user.Unit], p)
		}
	}
	return nil
}

// plan shares the month's feed among the villages: the cadre's village
// gets its rows, the township half of the county, the other townships'
// villages the rest evenly.
func (m *month) plan() {
	s := m.e.size
	var inTownship, elsewhere []string
	for _, t := range m.e.tree.Children(countyCode) {
		for _, v := range m.e.tree.Children(t) {
			m.villages = append(m.villages, v)
			m.trees[v] = &demo.Tree{Units: []syncproto.UnitInput{
				{Code: demo.CityCode, Name: demo.CityName},
				{Code: countyCode, Name: m.e.tree.Name(countyCode)},
				{Code: t, Name: m.e.tree.Name(t)},
				{Code: v, Name: m.e.tree.Name(v)},
			}}
			switch {
			case v == m.e.cadre.Unit:
			case t == townshipCode:
				inTownship = append(inTownship, v)
			default:
				elsewhere = append(elsewhere, v)
			}
		}
	}
	m.perMonth[m.e.cadre.Unit] = float64(s.cadre)
	for _, v := range inTownship {
		m.perMonth[v] = float64(s.township-s.cadre) / float64(len(inTownship))
	}
	for _, v := range elsewhere {
		m.perMonth[v] = float64(s.county-s.township) / float64(len(elsewhere))
	}
	m.stats.villages = len(m.villages)
}

// feedRow is a row of a day's feed and the village its address names.
type feedRow struct {
	syncproto.FeedWarning
	village string
}

// rowsOn is the feed of the day daysAgo days before today, Beijing time:
// each village's share of its month, in warned_at order, with external
// ids numbered as the national platform's.
func (m *month) rowsOn(daysAgo int) []feedRow {
	day := syncproto.DayStart(m.now).AddDate(0, 0, -daysAgo)
	i := monthDays - daysAgo // 0 for the first day
	var rows []feedRow
	for vi, v := range m.villages {
		per := m.perMonth[v]
		n := int(math.Floor(float64(i+1)*per/monthDays)) - int(math.Floor(float64(i)*per/monthDays))
		for _, r := range demo.Warnings(m.trees[v], day, n, m.e.cfg.seed*1_000_003+int64(i*1000+vi)) {
			rows = append(rows, feedRow{r, v})
		}
	}
	slices.SortStableFunc(rows, func(a, b feedRow) int { return a.WarnedAt.Compare(b.WarnedAt) })
	for k := range rows {
		rows[k].ExternalID = fmt.Sprintf("GJFZ-%s-%06d", day.Format("20060102"), k+1)
	}
	return rows
}

// day is one day's work on that day's feed.
func (m *month) day(ctx context.Context, daysAgo int) error {
	rows := m.rowsOn(daysAgo)
	feed := make([]syncproto.FeedWarning, len(rows))
	for i, r := range rows {
		feed[i] = r.FeedWarning
	}
	ids, err := cityload.ImportFeed(ctx, m.center.c, feed)
	if err != nil {
		return err
	}
	var today []*tracked
	for i, r := range rows {
		w := &tracked{id: ids[i], village: r.village, unit: r.Unit, warnedAt: r.WarnedAt, last: r.WarnedAt, changes: 1}
		if cs := m.cadres[r.Unit]; len(cs) == 1 {
			w.assignee = cs[0] // the feed assigns a sole cadre's warnings
		}
		today = append(today, w)
	}
	m.all = append(m.all, today...)

	// Leads send down what came to them.
	for _, w := range today {
		if syncproto.UnitLevel(w.unit) == syncproto.RoleVillage || m.rng.Float64() >= dispatchShare {
			continue
		}
		by := m.county
		if syncproto.UnitLevel(w.unit) == syncproto.RoleTownship {
			by = m.leads[w.unit]
		}
		m.queue(by, w, syncproto.OpDispatched, m.after(w, 15*time.Minute, 4*time.Hour), syncproto.OpBody{Unit: w.village})
		w.unit = w.village
		if cs := m.cadres[w.village]; len(cs) == 1 {
			w.assignee = cs[0]
		}
		m.stats.dispatches++
	}
	if err := m.flush(ctx); err != nil {
		return err
	}
	// Township leads assign what sits in a village with two cadres.
	for _, w := range today {
		if w.assignee != nil || syncproto.UnitLevel(w.unit) != syncproto.RoleVillage || m.rng.Float64() >= assignShare {
			continue
		}
		cs := m.cadres[w.unit]
		w.assignee = cs[m.rng.IntN(len(cs))]
		m.queue(m.leads[syncproto.ParentCode(w.unit)], w, syncproto.OpAssigned, m.after(w, 10*time.Minute, 3*time.Hour),
			syncproto.OpBody{Assignee: w.assignee.id})
		m.stats.assignments++
	}
	if err := m.flush(ctx); err != nil {
		return err
	}
	// Cadres try to reach the people, some twice; the newest warnings
	// have had less time.
	share := attemptShare * min(1, float64(daysAgo)/3)
	for _, w := range today {
		if w.assignee == nil || m.rng.Float64() >= share {
			continue
		}
		if m.attempt(w, m.rng.Float64() < conclusiveShare, 30*time.Minute, 12*time.Hour) {
			continue
		}
		if m.rng.Float64() < secondShare {
			m.attempt(w, m.rng.Float64() < 0.75, 2*time.Hour, 30*time.Hour)
		}
	}
	if err := m.flush(ctx); err != nil {
		return err
	}
	if err := m.upload(ctx); err != nil {
		return err
	}
	// Township leads review the resolved ones.
	for _, w := range today {
		if !w.resolved || w.closed {
			continue
		}
		decision, comment := "", ""
		switch u := m.rng.Float64(); {
		case u < approveShare:
			decision, comment = syncproto.DecisionApprove, reviewComment(m.rng, true)
			w.closed = true
		case u < approveShare+returnShare:
			decision, comment = syncproto.DecisionReturn, reviewComment(m.rng, false)
			w.resolved = false
		default:
			continue
		}
		op := m.queue(m.leads[syncproto.ParentCode(w.unit)], w, syncproto.OpReviewed, m.after(w, time.Hour, 24*time.Hour),
			syncproto.OpBody{Decision: decision, Comment: comment})
		op.BaseVersion = w.version
		m.stats.reviews++
	}
	if err := m.flush(ctx); err != nil {
		return err
	}
	// Now and then a cadre records a visit on a warning already closed.
	for _, w := range today {
		if w.closed && m.rng.Float64() < lateShare {
			m.attempt(w, true, time.Hour, 48*time.Hour)
		}
	}
	return m.flush(ctx)
}

// after is a time from lo to hi after w's latest event, never later than
// a minute ago; it becomes w's latest.
func (m *month) after(w *tracked, lo, hi time.Duration) time.Time {
	t := w.last.Add(lo + time.Duration(m.rng.Int64N(int64(hi-lo))))
	if limit := m.now.Add(-time.Minute); t.After(limit) {
		t = limit
	}
	t = t.Truncate(time.Second)
	if t.Before(w.last) {
		t = w.last
	}
	w.last = t
	return t
}

// queue adds an op by who on w for the next push.
func (m *month) queue(who *member, w *tracked, typ string, at time.Time, body syncproto.OpBody) *syncproto.Op {
	who.ops = append(who.ops, syncproto.Op{ID: uuid.NewString(), ClientSeq: who.nextSeq(), Type: typ, WarningID: w.id, At: at, Body: body})
	op := &who.ops[len(who.ops)-1]
	m.byOp[op.ID] = w
	return op
}

// attempt queues an attempt by w's assignee and reports whether it
// resolved the warning.
func (m *month) attempt(w *tracked, conclusive bool, lo, hi time.Duration) bool {
	r := m.rng
	method := []string{syncproto.MethodVisit, syncproto.MethodVisit, syncproto.MethodPhone, syncproto.MethodPhone, syncproto.MethodVideo}[r.IntN(5)]
	var outcome string
	reached := true
	var loss int64
	switch u := r.Float64(); {
	case conclusive && u < 0.85:
		outcome = syncproto.OutcomeDissuaded
	case conclusive && u < 0.95:
		outcome = syncproto.OutcomeNotTarget
	case conclusive:
		outcome = syncproto.OutcomeAlreadyDefrauded
		loss = 100 * (500 + r.Int64N(50_000))
	case u < 0.7:
		outcome, reached = syncproto.OutcomeUnreachable, false
	default:
		outcome = syncproto.OutcomeRefused
	}
	body := syncproto.OpBody{AttemptID: uuid.NewString(), Method: method, Reached: &reached, Outcome: outcome, LossFen: loss,
		Notes: attemptNotes(r, method, outcome, loss)}
	if r.Float64() < locationShare {
		// Around 建安区, with a phone's accuracy in metres.
		body.Location = &syncproto.Location{Lat: 33.95 + 0.2*r.Float64(), Lng: 113.75 + 0.25*r.Float64(), Accuracy: float64(4 + r.IntN(60))}
	}
	if r.Float64() < photoShare {
		n := 1 + r.IntN(5)/4 // one, sometimes two
		for range n {
			p := fakePhoto(r, 1500+r.IntN(3000))
			body.Photos = append(body.Photos, p.sum)
			m.stats.photos++
			if r.Float64() < uploadedShare {
				w.assignee.photos = append(w.assignee.photos, p)
			} else {
				m.stats.photosMissing++
			}
		}
		m.stats.withPhotos++
	}
	m.queue(w.assignee, w, syncproto.OpRecorded, m.after(w, lo, hi), body)
	m.stats.attempts++
	if syncproto.Conclusive(outcome) && !w.closed {
		w.resolved = true
	}
	return syncproto.Conclusive(outcome)
}

// fakePhoto is size bytes that start like a JPEG: the server checks the
// type, and the pages carry only the sum.
func fakePhoto(r *rand.Rand, size int) photo {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	copy(data, []byte{0xff, 0xd8, 0xff, 0xe0})
	sum := sha256.Sum256(data)
	return photo{sum: hex.EncodeToString(sum[:]), data: data}
}

// flush pushes every member's queued ops, a few members at once as their
// phones would, and keeps what the server answered: every op must apply.
func (m *month) flush(ctx context.Context) error {
	var busy []*member
	for _, p := range m.allMembers() {
		if len(p.ops) > 0 {
			busy = append(busy, p)
		}
	}
	results := make([][]syncproto.Result, len(busy))
	err := workpool.Run(4, len(busy), func(i int) error {
		p := busy[i]
		for start := 0; start < len(p.ops); start += syncproto.MaxPushOps {
			part := p.ops[start:min(len(p.ops), start+syncproto.MaxPushOps)]
			resp, err := p.c.Push(ctx, syncproto.PushRequest{DeviceID: p.device, Ops: part})
			if err != nil {
				return fmt.Errorf("push of %s: %w", p.user.Username, err)
			}
			results[i] = append(results[i], resp.Results...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, p := range busy {
		for k, r := range results[i] {
			if r.Status != syncproto.StatusApplied {
				return fmt.Errorf("%s's %s op %d: %s %s: %s", p.user.Username, p.ops[k].Type, r.ClientSeq, r.Status, r.Code, r.Message)
			}
			w := m.byOp[r.OpID]
			w.version = max(w.version, r.Version)
			w.changes++
			m.stats.flags += len(r.Flags)
			delete(m.byOp, r.OpID)
		}
		p.ops = p.ops[:0]
	}
	return nil
}

// upload sends the photos cadres queued, as their phones did.
func (m *month) upload(ctx context.Context) error {
	type job struct {
		who *member
		p   photo
	}
	var jobs []job
	for _, p := range m.allMembers() {
		for _, ph := range p.photos {
			jobs = append(jobs, job{p, ph})
		}
		p.photos = nil
	}
	return workpool.Run(4, len(jobs), func(i int) error {
		j := jobs[i]
		if err := j.who.c.UploadBlob(ctx, "", j.p.sum, "image/jpeg", j.p.data, nil); err != nil {
			return fmt.Errorf("photo of %s: %w", j.who.user.Username, err)
		}
		return nil
	})
}

func (m *month) allMembers() []*member {
	out := []*member{m.center, m.county}
	for _, t := range slices.Sorted(maps.Keys(m.leads)) {
		out = append(out, m.leads[t])
	}
	for _, v := range m.villages {
		out = append(out, m.cadres[v]...)
	}
	return out
}

// count fills in the totals once the month is done.
func (m *month) count() error {
	s := &m.stats
	cadreID := m.e.userIDs[m.e.cadre.Username]
	for _, w := range m.all {
		s.county++
		s.countyChanges += w.changes
		if strings.HasPrefix(w.unit, townshipCode) {
			s.township++
			s.townshipChanges += w.changes
		}
		if w.assignee != nil && w.assignee.id == cadreID {
			s.cadre++
		}
	}
	seq, err := m.e.srv.Store.LastSeq()
	s.log = int(seq)
	return err
}

// Notes and comments in a cadre's words: varied as real ones are, so that
// gzip finds in a page only the repetition real notes have.
var (
	notePeople   = []string{"本人", "本人", "本人", "其母亲", "其父亲", "其妻子", "其丈夫", "其儿子", "其女儿", "其邻居"}
	noteApps     = []string{"某投资APP", "刷单群", "虚拟货币平台", "贷款APP", "游戏交易平台", "所谓客服的会议软件", "陌生链接"}
	noteDone     = []string{"已讲解{fraud}的常见套路", "已告知对方是诈骗", "已播放反诈宣传视频", "已逐条讲解预警信息", "已协助其下载国家反诈中心APP"}
	noteAgree    = []string{"本人表示理解", "本人表示今后不再理会", "本人答应删除对方联系方式", "本人已卸载{app}", "本人已退出{app}", "本人称未转账"}
	noteFollow   = []string{"", "", "明日再次回访", "已加入村反诈群", "已发放反诈宣传单", "已告知家属多加留意", "已登记，三日后回访"}
	noteNoAnswer = []string{"电话无人接听", "电话关机", "号码已停机", "家中无人，邻居称其外出务工", "家中无人，已在门上留联系卡", "多次拨打未接通"}
	noteRefuse   = []string{"本人不配合，称不需要", "态度抵触，拒绝沟通", "本人称自己能分辨，不愿多谈", "挂断电话，拒绝核实"}
	noteNotMe    = []string{"核实为号码登记错误", "本人称系工作需要接触相关信息", "号码已转给他人使用，现用户非预警对象"}
	comments     = []string{"属实", "核实无误", "情况属实，同意办结", "同意", "照片清楚，办结", "已电话复核"}
	returns      = []string{"请补充照片", "请再次上门核实", "未见劝阻过程，请补充", "回访记录不完整"}
	fraudWords   = []string{"刷单返利", "虚假投资理财", "冒充客服", "冒充公检法", "虚假贷款", "虚假征信"}
)

// attemptNotes writes what a cadre notes after an attempt; some leave
// none.
func attemptNotes(r *rand.Rand, method, outcome string, loss int64) string {
	if r.IntN(7) == 0 {
		return ""
	}
	pick := func(s []string) string {
		v := s[r.IntN(len(s))]
		v = strings.ReplaceAll(v, "{app}", noteApps[r.IntN(len(noteApps))])
		return strings.ReplaceAll(v, "{fraud}", fraudWords[r.IntN(len(fraudWords))])
	}
	var b strings.Builder
	switch method {
	case syncproto.MethodVisit:
		b.WriteString(pick([]string{"上门走访", "入户走访", "到家中", "在村口遇到"}))
	case syncproto.MethodPhone:
		b.WriteString(pick([]string{"电话联系", "拨打电话", "电话回访"}))
	default:
		b.WriteString(pick([]string{"视频通话", "微信视频"}))
	}
	fmt.Fprintf(&b, "（%d日%d时）", 1+r.IntN(28), 8+r.IntN(12))
	switch outcome {
	case syncproto.OutcomeUnreachable:
		b.WriteString(pick(noteNoAnswer))
	case syncproto.OutcomeRefused:
		b.WriteString(pick(noteRefuse))
	case syncproto.OutcomeNotTarget:
		b.WriteString(pick(noteNotMe))
	case syncproto.OutcomeAlreadyDefrauded:
		fmt.Fprintf(&b, "%s已被骗%d元，已协助报警并保存聊天记录", pick(notePeople), loss/100)
	default:
		b.WriteString(pick(notePeople) + "，" + pick(noteDone) + "，" + pick(noteAgree))
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "，对方曾要求转账%d元", 100*(1+r.IntN(200)))
		}
	}
	if f := pick(noteFollow); f != "" {
		b.WriteString("，" + f)
	}
	b.WriteString("。")
	return b.String()
}

// reviewComment is a lead's comment; most approvals have none.
func reviewComment(r *rand.Rand, approve bool) string {
	if !approve {
		return returns[r.IntN(len(returns))]
	}
	if r.IntN(3) > 0 {
		return ""
	}
	return comments[r.IntN(len(comments))]
}
