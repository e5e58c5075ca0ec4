package feed_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// latinWord finds a word of English in a message; the columns' own names
// (warned_at) are allowed, for finding them in the file's header.
var latinWord = regexp.MustCompile(`[A-Za-z]{3,}`)

// wantChinese fails unless every message reads in Chinese: no English
// words outside the column names and examples it quotes.
func wantChinese(t *testing.T, problems []syncproto.FeedProblem) {
	t.Helper()
	for _, p := range problems {
		rest := p.Message
		for _, allowed := range append(feed.Columns(), "UTF-8", "CSV", "high", "medium", "low") {
			rest = strings.ReplaceAll(rest, allowed, "")
		}
		if w := latinWord.FindString(rest); w != "" {
			t.Errorf("message %q has the English word %q", p.Message, w)
		}
	}
}

// A row with several problems carries every one of them, each naming its
// column, in Chinese; Err stays the first, as the protocol's message.
func TestParseCSV_EveryProblemOfARow(t *testing.T) {
	rows := MustParse(t, header+",,,123456789,,41,刷单返利,huge,not-a-time,also-not\n")
	row := rows[0]
	AssertRowErr(t, row, 1, "warned_at")
	var fields []string
	for _, p := range row.Problems {
		fields = append(fields, p.Field)
	}
	want := []string{"warned_at", "deadline", "external_id", "name", "phone", "id_tail", "unit", "risk"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Fatalf("problems' fields (-want +got):\n%s", diff)
	}
	wantChinese(t, row.Problems)
	if !strings.Contains(row.Problems[0].Message, "预警时间（warned_at）不是可识别的时间") {
		t.Fatalf("the time's problem reads %q", row.Problems[0].Message)
	}
}

// A row that cannot be read as CSV, or has the wrong cell count, says so
// in Chinese.
func TestParseCSV_RowShapeProblemsInChinese(t *testing.T) {
	rows := MustParse(t, header+"E1,测试\"甲,1,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\nE2,x\n")
	for _, row := range rows {
		if len(row.Problems) != 1 {
			t.Fatalf("row %d has problems %+v", row.Num, row.Problems)
		}
		wantChinese(t, row.Problems)
	}
}

// Check words a JSON row's problems as ParseCSV does a CSV row's.
func TestCheck(t *testing.T) {
	f := syncproto.FeedWarning{ExternalID: "E1", Name: "测试甲", Unit: "411002", FraudType: "刷单返利", Risk: "high"}
	first, problems := feed.Check(&f, now)
	if first == nil || first.Details["field"] != "phone" || len(problems) != 2 || problems[1].Field != "warned_at" {
		t.Fatalf("Check: %v %+v", first, problems)
	}
	wantChinese(t, problems)
	f.Phone, f.WarnedAt = "13800000001", now.Add(-1)
	if first, problems := feed.Check(&f, now); first != nil || problems != nil {
		t.Fatalf("a valid row: %v %+v", first, problems)
	}
}

// Every whole-file problem has a Chinese wording.
func TestExplain_WholeFile(t *testing.T) {
	for _, input := range []string{"", "external_id,name,phone,unit,fraud_type,risk,warned_at,Unit\n", "name,phone,unit,fraud_type,risk,warned_at\n",
		"external_id,name,unit,fraud_type,risk,warned_at\n", "external_id,\"name\"x,phone\n"} {
		_, err := feed.ParseCSV(strings.NewReader(input), now)
		e := syncproto.AsError(err)
		if e == nil {
			t.Fatalf("%q parsed", input)
		}
		wantChinese(t, []syncproto.FeedProblem{feed.Explain(e)})
	}
}
