package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A feed row whose external_id is a spreadsheet formula comes back in the
// feedback CSV for the national platform as text no spreadsheet runs.
func TestFeedback_CSVGuardsFormulas(t *testing.T) {
	c := newCity(t, syncproto.JSON, nil)
	ctx := context.Background()
	center := c.dev["center1"]
	hostile := []string{`=cmd|' /C calc'!A0`, `+1+1`, `-1+1`, `@SUM(1+1)`}
	var rows []syncproto.FeedWarning
	for _, ext := range hostile {
		rows = append(rows, servertest.FeedRow(ext, unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	}
	if resp, err := center.ImportFeed(ctx, rows); err != nil || len(resp.Created) != len(hostile) {
		t.Fatalf("import: %+v %v", resp, err)
	}
	var raw []byte
	if err := center.DoRaw(ctx, "GET", "/v1/feedback?format=csv", "", nil, &raw); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, rec := range servertest.GuardedCSV(t, string(raw)) {
		ids[rec[0]] = true
	}
	for _, ext := range hostile {
		if !ids["'"+ext] {
			t.Errorf("external_id %q is not in the CSV as %q", ext, "'"+ext)
		}
	}
	// The JSON answer carries the ids as they are.
	page, err := center.Feedback(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if strings.HasPrefix(it.ExternalID, "'") {
			t.Errorf("JSON feedback changed external_id to %q", it.ExternalID)
		}
	}
}
