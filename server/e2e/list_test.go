package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestList: every filter and sort of GET /v1/warnings, across pages, gives
// exactly the warnings the same filter picks from the states pulled.
func TestList(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.JSON, nil)
	r := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UTC()
	units := []string{unitVillA1, unitVillA2, unitVillB1, unitTownA, unitCity}
	frauds := []string{"刷单返利", "虚假投资理财", "冒充客服"}
	risks := []string{syncproto.RiskHigh, syncproto.RiskMedium, syncproto.RiskLow}
	var rows []syncproto.FeedWarning
	for i := range 60 {
		row := servertest.FeedRow(fmt.Sprintf("L%02d", i), units[r.IntN(len(units))], risks[r.IntN(3)], now.Add(-time.Duration(r.IntN(4*24*60)+1)*time.Minute))
		row.FraudType = frauds[r.IntN(3)]
		row.Phone = fmt.Sprintf("1380000%04d", r.IntN(10000))
		rows = append(rows, row)
	}
	resp, err := c.dev["center1"].ImportFeed(ctx, rows)
	if err != nil || len(resp.Created) != len(rows) {
		t.Fatalf("import: %v", err)
	}
	for i, cr := range resp.Created {
		switch {
		case rows[i].Unit == unitVillA1 && i%2 == 0:
			mustApplied(t, push(t, c.dev["a1"], op(c.dev["a1"], syncproto.OpRecorded, cr.ID, 0, recordBody(syncproto.OutcomeDissuaded, true))).Results[0])
		case rows[i].Unit == unitVillA2 && i%3 == 0:
			mustApplied(t, push(t, c.dev["leadA"], op(c.dev["leadA"], syncproto.OpAssigned, cr.ID, 0, syncproto.OpBody{Assignee: c.userIDs["a2y"]})).Results[0])
			late := op(c.dev["a2x"], syncproto.OpRecorded, cr.ID, 0, recordBody(syncproto.OutcomeRefused, true))
			mustApplied(t, push(t, c.dev["a2x"], late).Results[0]) // stale_assignee: flagged
		}
	}
	got, _ := pullAll(t, c.dev["center1"], "", syncproto.MaxPullLimit)
	var all []*syncproto.Warning
	for _, ch := range got {
		if w, ok := ch.Data.(*syncproto.Warning); ok {
			all = append(all, w)
		}
	}

	list := func(t *testing.T, dev string, q url.Values) ([]syncproto.WarningItem, int) {
		t.Helper()
		var items []syncproto.WarningItem
		pages := 0
		for cursor := ""; pages < 100; pages++ {
			q.Set("cursor", cursor)
			var page syncproto.WarningList
			if err := c.dev[dev].Do(ctx, http.MethodGet, "/v1/warnings?"+q.Encode(), nil, &page); err != nil {
				t.Fatalf("list %s: %v", q.Encode(), err)
			}
			items = append(items, page.Items...)
			if !page.More {
				return items, pages + 1
			}
			cursor = page.Cursor
		}
		t.Fatal("list never ended")
		return nil, 0
	}
	type filter struct {
		name  string
		query url.Values
		keep  func(w *syncproto.Warning) bool
		order func(a, b *syncproto.Warning) int
	}
	newest := func(a, b *syncproto.Warning) int { return b.ReceivedAt.Compare(a.ReceivedAt) }
	soonest := func(a, b *syncproto.Warning) int { return a.Deadline.Compare(b.Deadline) }
	warnedNewest := func(a, b *syncproto.Warning) int { return b.WarnedAt.Compare(a.WarnedAt) }
	day := beijingDay(now.Add(-48 * time.Hour))
	for _, f := range []filter{
		{"All", url.Values{}, func(*syncproto.Warning) bool { return true }, newest},
		{"TownA", url.Values{"unit": {unitTownA}}, func(w *syncproto.Warning) bool { return strings.HasPrefix(w.Unit, unitTownA) }, newest},
		{"Status", url.Values{"status": {"resolved,in_progress"}}, func(w *syncproto.Warning) bool {
			return w.Status == syncproto.WarningResolved || w.Status == syncproto.WarningInProgress
		}, newest},
		{"Risk", url.Values{"risk": {"high"}, "sort": {"deadline"}}, func(w *syncproto.Warning) bool { return w.Risk == syncproto.RiskHigh }, soonest},
		{"FraudType", url.Values{"fraud_type": {"冒充客服"}, "sort": {"warned"}}, func(w *syncproto.Warning) bool { return w.FraudType == "冒充客服" }, warnedNewest},
		{"Assignee", url.Values{"assignee": {c.userIDs["a2y"]}}, func(w *syncproto.Warning) bool { return w.Assignee == c.userIDs["a2y"] }, newest},
		{"Overdue", url.Values{"overdue": {"true"}}, func(w *syncproto.Warning) bool { return w.Overdue(time.Now()) }, newest},
		{"NotOverdue", url.Values{"overdue": {"false"}, "sort": {"deadline"}}, func(w *syncproto.Warning) bool { return !w.Overdue(time.Now()) }, soonest},
		{"Flagged", url.Values{"flagged": {"true"}}, func(w *syncproto.Warning) bool { return w.OpenFlags() > 0 }, newest},
		{"PhoneTail", url.Values{"q": {all[0].Phone[7:]}}, func(w *syncproto.Warning) bool { return strings.HasSuffix(w.Phone, all[0].Phone[7:]) }, newest},
		{"Name", url.Values{"q": {"测试L1"}}, func(w *syncproto.Warning) bool { return strings.Contains(w.Name, "测试L1") }, newest},
		{"ReceivedToday", url.Values{"from": {beijingDay(now)}, "to": {beijingDay(now)}}, func(w *syncproto.Warning) bool { return beijingDay(w.ReceivedAt) == beijingDay(now) }, newest},
		{"ReceivedBefore", url.Values{"to": {day}}, func(w *syncproto.Warning) bool { return beijingDay(w.ReceivedAt) <= day }, newest},
	} {
		t.Run(f.name, func(t *testing.T) {
			var want []*syncproto.Warning
			for _, w := range all {
				if f.keep(w) {
					want = append(want, w)
				}
			}
			slices.SortStableFunc(want, func(a, b *syncproto.Warning) int {
				if c := f.order(a, b); c != 0 {
					return c
				}
				return strings.Compare(b.ID, a.ID)
			})
			for _, limit := range []string{"", "7"} {
				q := url.Values{}
				for k, v := range f.query {
					q[k] = v
				}
				if limit != "" {
					q.Set("limit", limit)
				}
				items, pages := list(t, "center1", q)
				if len(items) != len(want) {
					t.Fatalf("limit %q: %d items, want %d", limit, len(items), len(want))
				}
				for i := range items {
					if items[i].ID != want[i].ID && f.order(want[i], findWarning(all, items[i].ID)) != 0 {
						t.Fatalf("limit %q: item %d is %s, want %s", limit, i, items[i].ID, want[i].ID)
					}
					if items[i].Status != findWarning(all, items[i].ID).Status {
						t.Fatalf("item %s status %s", items[i].ID, items[i].Status)
					}
				}
				if limit == "7" && len(want) > 7 && pages < 2 {
					t.Fatalf("no paging with limit 7 over %d items", len(want))
				}
			}
		})
	}
	if len(all) != 60 {
		t.Fatalf("%d warnings", len(all))
	}

	t.Run("Scope", func(t *testing.T) {
		items, _ := list(t, "leadA", url.Values{})
		for _, it := range items {
			if !strings.HasPrefix(it.Unit, unitTownA) {
				t.Fatalf("leadA listed %s", it.Unit)
			}
		}
		var page syncproto.WarningList
		if err := c.dev["leadA"].Do(ctx, http.MethodGet, "/v1/warnings?unit="+unitTownB, nil, &page); errCode(err) != syncproto.CodeForbidden {
			t.Fatalf("leadA lists township B: %v", err)
		}
		if err := c.dev["a1"].Do(ctx, http.MethodGet, "/v1/warnings", nil, &page); errCode(err) != syncproto.CodeForbidden {
			t.Fatalf("cadre lists: %v", err)
		}
	})
	t.Run("BadParameters", func(t *testing.T) {
		for _, q := range []string{"unit=411002009", "status=lost", "risk=extreme", "overdue=maybe", "flagged=2",
			"sort=name", "limit=-1", "limit=501", "limit=x", "from=2026-02-31", "from=" + beijingDay(now) + "&to=" + day,
			"cursor=garbage!", "assignee=bob"} {
			var page syncproto.WarningList
			if err := c.dev["center1"].Do(ctx, http.MethodGet, "/v1/warnings?"+q, nil, &page); errCode(err) != syncproto.CodeInvalidRequest {
				t.Errorf("%s: %v, want invalid_request", q, err)
			}
		}
	})
	t.Run("Audited", func(t *testing.T) {
		audited := func() int {
			var page struct {
				Entries []struct {
					Username, WarningID, What string
				} `json:"entries"`
			}
			if err := c.admin.Do(ctx, http.MethodGet, "/v1/admin/audit?limit=2000", nil, &page); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range page.Entries {
				if e.Username == "leadA" && e.What == "list" {
					n++
				}
			}
			return n
		}
		before := audited()
		items, _ := list(t, "leadA", url.Values{"limit": {"3"}})
		if n := audited() - before; n != len(items) || n == 0 {
			t.Fatalf("%d list reads audited for leadA, want %d", n, len(items))
		}
	})
}

func findWarning(all []*syncproto.Warning, id string) *syncproto.Warning {
	for _, w := range all {
		if w.ID == id {
			return w
		}
	}
	return &syncproto.Warning{}
}
