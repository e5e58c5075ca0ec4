package e2e_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A feed file is up to the feed limit, which is far above the body limit of
// other requests; only the center and admins may send one, so anyone else
// is refused before the server reads it, whatever its size.
func TestFeed_RefusedUnreadForNonImporters(t *testing.T) {
	const limit = 64 << 10
	c := newCityWith(t, servertest.Options{FeedLimit: limit})
	seq := c.srv.LastSeq(t)
	file := "external_id,name,phone,unit,fraud_type,risk,warned_at\n" + strings.Repeat("X,名,13800000000,"+unitVillA1+",刷单返利,high,2026-01-01T00:00:00Z\n", 2*limit/60)
	for _, role := range []string{"leadA", "county1", "a1"} {
		r := send(t, c.srv.URL, rawReq{Path: "/v1/feed/warnings", Token: roleToken(c, role), ContentType: syncproto.MediaCSV, Body: []byte(file)})
		wantError(t, r, http.StatusForbidden, syncproto.CodeForbidden)
	}
	r := send(t, c.srv.URL, rawReq{Path: "/v1/feed/warnings", Token: roleToken(c, "center1"), ContentType: syncproto.MediaCSV, Body: []byte(file)})
	wantError(t, r, http.StatusRequestEntityTooLarge, syncproto.CodePayloadTooLarge)
	if c.srv.LastSeq(t) != seq {
		t.Fatalf("refused feeds changed the store: seq %d, then %d", seq, c.srv.LastSeq(t))
	}
}
