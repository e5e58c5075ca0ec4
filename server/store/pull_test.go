package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// pulled is what one pull, page after page until more is false, brought a
// device: how many times each record came (entity/id), the device's copy
// afterwards (the put as JSON, as replica keeps it), and the last cursor.
type pulled struct {
	times  map[string]int
	state  map[string]string
	cursor string
	pages  int
	reset  bool
}

// pullPages pulls d's scope from cursor in pages of req's limit and budget
// onto a copy of state (nil: an empty one).
func pullPages(tb testing.TB, d *servertest.Device, cursor string, req syncproto.PullRequest, state map[string]string) *pulled {
	tb.Helper()
	p := &pulled{times: map[string]int{}, state: maps.Clone(state), cursor: cursor}
	if p.state == nil {
		p.state = map[string]string{}
	}
	for range 100_000 {
		req.DeviceID, req.Cursor = d.ID, p.cursor
		resp, err := d.Pull(context.Background(), req)
		if err != nil {
			tb.Fatalf("pull: %v", err)
		}
		p.pages++
		if resp.Reset {
			p.reset = true
			p.state = map[string]string{}
		}
		p.apply(tb, resp)
		if !resp.More {
			return p
		}
	}
	tb.Fatal("the pull never ended")
	return nil
}

// apply applies one page to p.
func (p *pulled) apply(tb testing.TB, resp *syncproto.PullResponse) {
	tb.Helper()
	for _, c := range resp.Changes {
		key := c.Entity + "/" + c.ID
		p.times[key]++
		if c.Kind == syncproto.ChangeRemove {
			delete(p.state, key)
			continue
		}
		data, err := json.Marshal(c)
		if err != nil {
			tb.Fatal(err)
		}
		p.state[key] = string(data)
	}
	p.cursor = resp.Cursor
}

// sentTwice lists the records p brought more than once.
func (p *pulled) sentTwice() []string {
	var twice []string
	for k, n := range p.times {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	return twice
}

// some is the first few of list, for a message.
func some(list []string) []string { return list[:min(len(list), 3)] }

// entriesAfter counts the index entries of scope above seq, and the
// distinct records they are of.
func entriesAfter(tb testing.TB, entries []idxEntry, scope string, seq uint64) (n, records int) {
	tb.Helper()
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Scope == scope && e.Seq > seq {
			n++
			seen[e.Rec] = true
		}
	}
	return n, len(seen)
}

// cursorSeq is the log seq a cursor stands at.
func cursorSeq(tb testing.TB, cursor string) uint64 {
	tb.Helper()
	c, err := syncproto.ParseCursor(cursor)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Seq
}

// TestPull_EachRecordOnce: warnings changed many times between two pulls
// (dispatched, assigned, attempted, reviewed) reach each device once, with
// their current state, across every page of its next pull; and a first
// sync of the busy scope sends each record once.
func TestPull_EachRecordOnce(t *testing.T) {
	c := newCompactCity(t, 30)
	before := map[string]*pulled{}
	for u, d := range c.devs {
		before[u] = pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
	}
	c.work(t, 300)
	entries := rawIndex(t, c.srv.Store)

	busiest := 0.0
	for u, d := range c.devs {
		// The truth: what a first sync in one page holds.
		truth := pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
		if truth.pages != 1 {
			t.Fatalf("%s: the scope does not fit in one page", u)
		}
		n, records := entriesAfter(t, entries, scopeOfDevice(d), cursorSeq(t, before[u].cursor))
		busiest = max(busiest, float64(n)/float64(max(records, 1)))

		next := pullPages(t, d, before[u].cursor, syncproto.PullRequest{Limit: 3}, before[u].state)
		if twice := next.sentTwice(); len(twice) > 0 || next.reset {
			t.Errorf("%s: the pull after the busy period (%d entries of %d records, %d pages) sent %d records more than once, such as %v",
				u, n, records, next.pages, len(twice), some(twice))
		}
		if !maps.Equal(next.state, truth.state) {
			t.Errorf("%s: after the pull the device holds %d records, its scope %d", u, len(next.state), len(truth.state))
		}

		first := pullPages(t, d, "", syncproto.PullRequest{Limit: 3}, nil)
		if twice := first.sentTwice(); len(twice) > 0 {
			t.Errorf("%s: a first sync in %d pages sent %d records more than once, such as %v", u, first.pages, len(twice), some(twice))
		}
		if !maps.Equal(first.state, truth.state) {
			t.Errorf("%s: a first sync in pages holds %d records, in one page %d", u, len(first.state), len(truth.state))
		}
	}
	// Each record of the busiest scope has several entries, spread over
	// many pages: the test shows something.
	if busiest < 3 {
		t.Fatalf("the busiest scope has %.1f entries per record; the test wants several", busiest)
	}
}

// TestPull_ChangedWhilePaging: a record that changes while a pull is
// between pages still reaches the device with its newest state, whether it
// was on a page already sent or on one still to come.
func TestPull_ChangedWhilePaging(t *testing.T) {
	ctx := context.Background()
	c := newCompactCity(t, 12)
	county := c.devs["county1"]
	p := pullPages(t, county, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
	c.work(t, 60)

	page, err := county.Pull(ctx, syncproto.PullRequest{DeviceID: county.ID, Cursor: p.cursor, Limit: 2})
	if err != nil || !page.More {
		t.Fatalf("first page: %+v %v", page, err)
	}
	p.times = map[string]int{}
	p.apply(t, page)
	// One warning the first page sent, one it did not: each gets an
	// attempt.
	sent := map[string]bool{}
	for _, ch := range page.Changes {
		sent[ch.ID] = true
	}
	var onPage, later string
	for _, w := range c.ops.warnings {
		switch {
		case sent[w] && onPage == "":
			onPage = w
		case !sent[w] && later == "":
			later = w
		}
	}
	if onPage == "" || later == "" {
		t.Fatalf("the first page sent %v", sent)
	}
	for _, w := range []string{onPage, later} {
		c.clock.Add(time.Minute)
		reached := true
		resp, err := c.center.Push(ctx, syncproto.PushRequest{DeviceID: c.center.ID, Ops: []syncproto.Op{{
			ID: uuid.NewString(), ClientSeq: c.center.NextSeq(), Type: syncproto.OpRecorded, WarningID: w,
			At: c.clock.Now().UTC(), Body: syncproto.OpBody{AttemptID: uuid.NewString(), Method: syncproto.MethodPhone,
				Reached: &reached, Outcome: syncproto.OutcomeRefused},
		}}})
		if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("push: %+v %v", resp, err)
		}
	}
	rest := pullPages(t, county, p.cursor, syncproto.PullRequest{Limit: 2}, p.state)
	truth := pullPages(t, county, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
	if !maps.Equal(rest.state, truth.state) {
		t.Fatalf("after the pull the device holds %d records, its scope %d", len(rest.state), len(truth.state))
	}
	if n := p.times["warning/"+later] + rest.times["warning/"+later]; n != 1 {
		t.Errorf("the warning changed before its page came was sent %d times, want once", n)
	}
}

// rawLatest reads every scope's latest entries of a running store:
// scope and record (entity byte + id) -> seq.
func rawLatest(tb testing.TB, st *store.Store) map[[2]string]uint64 {
	tb.Helper()
	out := map[[2]string]uint64{}
	err := st.RawDB().View(func(tx *bolt.Tx) error {
		return rawLatestTx(tx, out)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawLatestTx reads every record's latest entries, wherever the file's
// layout keeps them (rawfile_test.go).
func rawLatestTx(tx *bolt.Tx, out map[[2]string]uint64) error {
	latest := tx.Bucket([]byte("latest"))
	if latest == nil {
		return nil
	}
	err := latest.ForEach(func(rec, v []byte) error {
		for _, e := range parseLatest(v) {
			out[[2]string{e.scope, string(rec)}] = e.seq
		}
		return nil
	})
	if err != nil {
		return err
	}
	return rawSubRecords(tx, 'l', func(id, _, v []byte) error {
		for _, e := range parseLatest(v) {
			out[[2]string{e.scope, "w" + string(id)}] = e.seq
		}
		return nil
	})
}

// latestOf is one scope's part of a record's latest value.
type latestOf struct {
	scope string
	seq   uint64
}

// parseLatest reads a record's latest value: repeated [scope
// length][scope][seq, 8 bytes big-endian] up to schema 15; from schema 16
// 0x00, then repeated [scope][seq as a uvarint], the scope 0x01 and a
// user id's 16 bytes, 0x02, a length and a unit code, or 0x03, a length
// and the name.
func parseLatest(v []byte) []latestOf {
	var out []latestOf
	if len(v) > 0 && v[0] == 0 {
		for v = v[1:]; len(v) > 1; {
			var scope string
			switch v[0] {
			case 1:
				scope, v = "user/"+uuid.UUID(v[1:17]).String(), v[17:]
			case 2:
				scope, v = "unit/"+string(v[2:2+int(v[1])]), v[2+int(v[1]):]
			default:
				scope, v = string(v[2:2+int(v[1])]), v[2+int(v[1]):]
			}
			seq, n := binary.Uvarint(v)
			out = append(out, latestOf{scope: scope, seq: seq})
			v = v[n:]
		}
		return out
	}
	for len(v) > 0 && len(v) >= 1+int(v[0])+8 {
		n := int(v[0])
		out = append(out, latestOf{scope: string(v[1 : 1+n]), seq: binary.BigEndian.Uint64(v[1+n:])})
		v = v[1+n+8:]
	}
	return out
}

// encodeLatest is parseLatest's inverse.
func encodeLatest(list []latestOf) []byte {
	var v []byte
	for _, e := range list {
		v = append(v, byte(len(e.scope)))
		v = append(v, e.scope...)
		v = binary.BigEndian.AppendUint64(v, e.seq)
	}
	return v
}

// newestEntries is the seq of the newest entry of each record per scope.
func newestEntries(entries []idxEntry) map[[2]string]uint64 {
	out := map[[2]string]uint64{}
	for _, e := range entries {
		k := [2]string{e.Scope, e.Rec}
		out[k] = max(out[k], e.Seq)
	}
	return out
}

// countRemoves counts the removes in a pull of d from nothing, in pages
// of limit, and returns what it brought.
func countRemoves(tb testing.TB, d *servertest.Device, limit int) (removes int, p *pulled) {
	tb.Helper()
	p = &pulled{times: map[string]int{}, state: map[string]string{}}
	for range 100_000 {
		resp, err := d.Pull(context.Background(), syncproto.PullRequest{DeviceID: d.ID, Cursor: p.cursor, Limit: limit})
		if err != nil {
			tb.Fatalf("pull: %v", err)
		}
		for _, c := range resp.Changes {
			if c.Kind == syncproto.ChangeRemove {
				removes++
			}
		}
		p.apply(tb, resp)
		if !resp.More {
			return removes, p
		}
	}
	tb.Fatal("the pull never ended")
	return 0, nil
}

// TestPull_SnapshotSkipsOldRemoves: a first sync carries no remove of a
// record that left the scope before it began: the device never had it.
func TestPull_SnapshotSkipsOldRemoves(t *testing.T) {
	c := newCompactCity(t, 24)
	c.work(t, 200)
	entries := rawIndex(t, c.srv.Store)
	latest := newestEntries(entries)
	removesDue := 0
	for _, e := range entries {
		if e.Kind == 'r' && latest[[2]string{e.Scope, e.Rec}] == e.Seq {
			removesDue++
		}
	}
	if removesDue == 0 {
		t.Fatal("no record left a scope: the test shows nothing")
	}
	for u, d := range c.devs {
		for _, limit := range []int{1, syncproto.MaxPullLimit} {
			removes, got := countRemoves(t, d, limit)
			if removes != 0 {
				t.Errorf("%s: a first sync in pages of %d carried %d removes", u, limit, removes)
			}
			if twice := got.sentTwice(); len(twice) > 0 {
				t.Errorf("%s: a first sync in pages of %d sent %v more than once", u, limit, some(twice))
			}
		}
	}
}

// TestPull_RemoveDuringSnapshot: a record that leaves the scope while a
// first sync is between pages, after a page carried it, is removed from
// the device by a later page.
func TestPull_RemoveDuringSnapshot(t *testing.T) {
	ctx := context.Background()
	c := newCompactCity(t, 12)
	lead := c.devs["leadA"]
	p := &pulled{times: map[string]int{}, state: map[string]string{}}
	var moved string
	for moved == "" {
		resp, err := lead.Pull(ctx, syncproto.PullRequest{DeviceID: lead.ID, Cursor: p.cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		p.apply(t, resp)
		for _, ch := range resp.Changes {
			if w, ok := ch.Data.(*syncproto.Warning); ok && moved == "" {
				moved = w.ID
			}
		}
		if !resp.More && moved == "" {
			t.Fatal("leadA's first sync carried no warning")
		}
	}
	if cur, err := syncproto.ParseCursor(p.cursor); err != nil || cur.Snapshot <= cur.Seq {
		t.Fatalf("the first sync's cursor %+v (%v) is not in the middle of a snapshot", cur, err)
	}
	// The center dispatches it to township B: it leaves leadA's scope.
	c.clock.Add(time.Minute)
	resp, err := c.center.Push(ctx, syncproto.PushRequest{DeviceID: c.center.ID, Ops: []syncproto.Op{{
		ID: uuid.NewString(), ClientSeq: c.center.NextSeq(), Type: syncproto.OpDispatched, WarningID: moved,
		At: c.clock.Now().UTC(), Body: syncproto.OpBody{Unit: servertest.UnitVillB1},
	}}})
	if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("dispatch: %+v %v", resp, err)
	}
	rest := pullPages(t, lead, p.cursor, syncproto.PullRequest{Limit: 2}, p.state)
	if _, held := rest.state["warning/"+moved]; held {
		t.Fatal("the warning dispatched away during the first sync is still on the device")
	}
	if rest.times["warning/"+moved] != 1 {
		t.Fatalf("the rest of the first sync carried the warning %d times, want once (its remove)", rest.times["warning/"+moved])
	}
	truth := pullPages(t, lead, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
	if !maps.Equal(rest.state, truth.state) {
		t.Fatalf("after the first sync the device holds %d records, its scope %d", len(rest.state), len(truth.state))
	}
}

// TestPull_MaxBytes: with a byte budget, a page's changes before its last
// stay under it (the last may go over: a page holds at least one change
// when any is due), the limit still applies, and paging through with a
// small budget brings every record once.
func TestPull_MaxBytes(t *testing.T) {
	c := newCompactCity(t, 30)
	c.work(t, 100)
	for _, u := range []string{"county1", "a1"} {
		d := c.devs[u]
		truth := pullPages(t, d, "", syncproto.PullRequest{Limit: syncproto.MaxPullLimit}, nil)
		for _, tc := range []struct{ budget, limit int }{{1, 0}, {900, 0}, {4000, 0}, {1 << 20, 3}} {
			p := &pulled{times: map[string]int{}, state: map[string]string{}}
			for {
				resp, err := d.Pull(context.Background(), syncproto.PullRequest{DeviceID: d.ID, Cursor: p.cursor, Limit: tc.limit, MaxBytes: tc.budget})
				if err != nil {
					t.Fatal(err)
				}
				if resp.More && len(resp.Changes) == 0 {
					t.Fatalf("%s, budget %d: an empty page with more to come", u, tc.budget)
				}
				if tc.limit > 0 && len(resp.Changes) > tc.limit {
					t.Fatalf("%s: %d changes in a page of limit %d", u, len(resp.Changes), tc.limit)
				}
				before := 0
				for i, ch := range resp.Changes {
					n, err := syncproto.MsgpackSize(ch)
					if err != nil {
						t.Fatal(err)
					}
					if i < len(resp.Changes)-1 {
						before += n
					}
				}
				if before >= tc.budget {
					t.Fatalf("%s, budget %d: the changes before a page's last take %d bytes", u, tc.budget, before)
				}
				p.pages++
				p.apply(t, resp)
				if !resp.More {
					break
				}
			}
			if twice := p.sentTwice(); len(twice) > 0 || !maps.Equal(p.state, truth.state) {
				t.Errorf("%s, budget %d: %d pages sent %v more than once and hold %d records of %d",
					u, tc.budget, p.pages, some(twice), len(p.state), len(truth.state))
			}
			// A budget that holds several changes makes fewer pages than
			// one that holds one.
			if tc.budget == 1 && p.pages < len(truth.state) {
				t.Errorf("%s: a budget of 1 byte made %d pages for %d records", u, p.pages, len(truth.state))
			}
		}
	}
}

// TestPull_WakesOnlyItsScope: a commit wakes the pulls held on the scopes
// it wrote into, and no other, before the write is acknowledged.
func TestPull_WakesOnlyItsScope(t *testing.T) {
	c := newCompactCity(t, 0)
	st := c.srv.Store
	scopes := map[string]string{}
	for _, u := range []string{"a1", "b1", "leadA", "leadB", "center1"} {
		scopes[u] = scopeOfDevice(c.devs[u])
	}
	woken := map[string]<-chan struct{}{}
	for u, scope := range scopes {
		ch, end := st.HoldScope(scope, c.devs[u].ID)
		if ch == nil {
			t.Fatalf("%s: no hold", u)
		}
		defer end()
		woken[u] = ch
	}
	if n := st.PullsWaiting(); n != len(scopes) {
		t.Fatalf("%d pulls held, want %d", n, len(scopes))
	}
	// A warning of village B1 goes to b1 at once: the city's, the
	// county's, township B's, village B1's and b1's scopes change.
	c.srv.Import(t, "center1", syncproto.FeedWarning{ExternalID: "N1", Name: "测试", Phone: "13800001234", IDTail: "123X",
		Address: "某村", Unit: servertest.UnitVillB1, FraudType: "刷单返利", Risk: syncproto.RiskHigh, WarnedAt: c.clock.Now().Add(-time.Hour)})
	for u, want := range map[string]bool{"b1": true, "leadB": true, "center1": true, "a1": false, "leadA": false} {
		select {
		case <-woken[u]:
			if !want {
				t.Errorf("%s's held pull was woken by a change outside its scope", u)
			}
		default:
			if want {
				t.Errorf("%s's held pull was not woken by the time the import was answered", u)
			}
		}
	}
}
