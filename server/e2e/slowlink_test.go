package e2e_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A pull with a small byte budget comes from a phone on a slow link: its
// answer is compressed harder, so the same page costs the link fewer
// bytes. Above the budget's threshold, where the server's time matters
// more than the link's, it is compressed fast.
func TestPull_SmallBudgetCompressedHarder(t *testing.T) {
	c := newCity(t, syncproto.Msgpack, nil)
	rows := make([]syncproto.FeedWarning, 300)
	for i := range rows {
		rows[i] = servertest.FeedRow(fmt.Sprintf("Z%03d", i), unitVillA1, syncproto.RiskMedium, time.Now().Add(-time.Hour))
	}
	c.srv.Import(t, "center1", rows...)
	lead := c.dev["leadA"]
	page := func(budget int) (wire int, changes int) {
		body := mustEncode(t, syncproto.Msgpack, syncproto.PullRequest{DeviceID: lead.ID, MaxBytes: budget})
		r := send(t, c.srv.URL, rawReq{Path: "/v1/sync/pull", Token: lead.Token(), ContentType: syncproto.MediaMsgpack,
			Accept: syncproto.MediaMsgpack, Header: map[string]string{"Accept-Encoding": "gzip"}, Body: body})
		if r.Status != http.StatusOK || r.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("pull: status %d, encoding %q", r.Status, r.Header.Get("Content-Encoding"))
		}
		var resp syncproto.PullResponse
		if err := syncproto.Msgpack.Unmarshal(r.plainBody(t), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.More {
			t.Fatalf("budget %d did not hold the whole scope in one page", budget)
		}
		return len(r.Body), len(resp.Changes)
	}
	slow, n1 := page(1 << 20)
	fast, n2 := page(1<<20 + 1)
	if n1 != n2 || n1 < 300 {
		t.Fatalf("the two pages hold %d and %d changes", n1, n2)
	}
	t.Logf("%d changes: %d B gzipped for a slow link's budget, %d B for a fast one's", n1, slow, fast)
	if slow >= fast {
		t.Fatalf("a slow link's page is %d B on the wire, a fast one's %d B: want it smaller", slow, fast)
	}
}
