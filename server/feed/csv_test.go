package feed_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// now is after every warned_at in these tests.
var now = time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)

const header = "external_id,name,phone,id_tail,address,unit,fraud_type,risk,warned_at,deadline\n"

// MustParse parses s and fails the test on a whole-file error.
func MustParse(tb testing.TB, s string) []feed.Row {
	tb.Helper()
	rows, err := feed.ParseCSV(strings.NewReader(s), now)
	if err != nil {
		tb.Fatalf("ParseCSV: %v", err)
	}
	return rows
}

// MustValid fails the test unless row has no error.
func MustValid(tb testing.TB, row feed.Row) syncproto.FeedWarning {
	tb.Helper()
	if row.Err != nil {
		tb.Fatalf("row %d: unexpected error %v", row.Num, row.Err)
	}
	return row.Warning
}

// AssertRowErr fails the test unless row has an invalid_request naming field
// (any field when field is "").
func AssertRowErr(tb testing.TB, row feed.Row, num int, field string) {
	tb.Helper()
	if row.Num != num {
		tb.Errorf("row num = %d, want %d", row.Num, num)
	}
	if row.Err == nil {
		tb.Fatalf("row %d: no error, want one on %q", num, field)
	}
	if row.Err.Code != syncproto.CodeInvalidRequest {
		tb.Errorf("row %d: code = %q, want invalid_request", num, row.Err.Code)
	}
	if field != "" && row.Err.Details["field"] != field {
		tb.Errorf("row %d: field = %v, want %q (%v)", num, row.Err.Details["field"], field, row.Err)
	}
}

// SameWarning reports how a and b differ, or "" when they are the same.
func SameWarning(a, b syncproto.FeedWarning) string {
	if !a.WarnedAt.Equal(b.WarnedAt) {
		return fmt.Sprintf("warned_at %v != %v", a.WarnedAt, b.WarnedAt)
	}
	if (a.Deadline == nil) != (b.Deadline == nil) || a.Deadline != nil && !a.Deadline.Equal(*b.Deadline) {
		return fmt.Sprintf("deadline %v != %v", a.Deadline, b.Deadline)
	}
	a.WarnedAt, b.WarnedAt, a.Deadline, b.Deadline = time.Time{}, time.Time{}, nil, nil
	if a != b {
		return fmt.Sprintf("%+v != %+v", a, b)
	}
	return ""
}

func sampleWarnings() []syncproto.FeedWarning {
	deadline := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	return []syncproto.FeedWarning{
		{
			ExternalID: "GJFZ-20261127-000001", Name: "测试甲", Phone: "13800000001", IDTail: "123X",
			Address: "尚集镇王庄村3组12号", Unit: "411003100201", FraudType: "刷单返利", Risk: syncproto.RiskHigh,
			WarnedAt: time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC),
		},
		{
			ExternalID: "GJFZ-20261127-000002", Name: "测试乙", IDTail: "0042",
			Address: "春秋社区5号楼, 2单元 \"东门\"\n对面", Unit: "411002001", FraudType: "冒充熟人/领导", Risk: syncproto.RiskMedium,
			WarnedAt: time.Date(2026, 11, 27, 2, 5, 0, 123456789, time.UTC), Deadline: &deadline,
		},
		{
			ExternalID: "GJFZ-20261127-000003", Name: "测试丙", Phone: "13900000003",
			Unit: "4110", FraudType: "虚假投资理财", Risk: syncproto.RiskLow,
			WarnedAt: time.Date(2026, 11, 27, 0, 5, 0, 0, time.UTC),
		},
	}
}

func TestWriteCSV_RoundTrip(t *testing.T) {
	want := sampleWarnings()
	var buf bytes.Buffer
	if err := feed.WriteCSV(&buf, want); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), strings.Join(feed.Columns(), ",")+"\n") {
		t.Fatalf("header: %q", strings.SplitN(buf.String(), "\n", 2)[0])
	}
	rows := MustParse(t, buf.String())
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		if row.Num != i+1 {
			t.Errorf("row %d: Num = %d", i+1, row.Num)
		}
		if d := SameWarning(MustValid(t, row), want[i]); d != "" {
			t.Errorf("row %d: %s", i+1, d)
		}
		if loc := row.Warning.WarnedAt.Location(); loc != time.UTC {
			t.Errorf("row %d: warned_at in %v, want UTC", i+1, loc)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		var buf bytes.Buffer
		if err := feed.WriteCSV(&buf, nil); err != nil {
			t.Fatal(err)
		}
		if rows := MustParse(t, buf.String()); len(rows) != 0 {
			t.Fatalf("got %d rows", len(rows))
		}
	})
}

func TestParseCSV(t *testing.T) {
	t.Run("BOM", func(t *testing.T) {
		rows := MustParse(t, "\uFEFF"+header+"E1,测试甲,13800000001,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n")
		if w := MustValid(t, rows[0]); w.ExternalID != "E1" {
			t.Fatalf("external_id = %q", w.ExternalID)
		}
	})

	t.Run("BOMBeforeQuotedHeader", func(t *testing.T) {
		rows := MustParse(t, "\uFEFF\"external_id\",\"name\",\"phone\",\"unit\",\"fraud_type\",\"risk\",\"warned_at\"\r\n"+
			"\"E1\",\"测试甲\",\"13800000001\",\"411002\",\"刷单返利\",\"低\",\"2026-11-27 09:00\"\r\n")
		MustValid(t, rows[0])
	})

	t.Run("ChineseRisk", func(t *testing.T) {
		rows := MustParse(t, header+
			"E1,测试甲,13800000001,,,411002,刷单返利,高,2026-11-27T01:00:00Z,\n"+
			"E2,测试乙,13800000002,,,411002,刷单返利,中,2026-11-27T01:00:00Z,\n"+
			"E3,测试丙,13800000003,,,411002,刷单返利,低,2026-11-27T01:00:00Z,\n"+
			"E4,测试丁,13800000004,,,411002,刷单返利,高风险,2026-11-27T01:00:00Z,\n"+
			"E5,测试戊,13800000005,,,411002,刷单返利, Medium ,2026-11-27T01:00:00Z,\n"+
			"E6,测试己,13800000006,,,411002,刷单返利,很高,2026-11-27T01:00:00Z,\n")
		for i, want := range []string{"high", "medium", "low", "high", "medium"} {
			if got := MustValid(t, rows[i]).Risk; got != want {
				t.Errorf("row %d: risk = %q, want %q", i+1, got, want)
			}
		}
		AssertRowErr(t, rows[5], 6, "risk")
	})

	t.Run("LocalTime", func(t *testing.T) {
		rows := MustParse(t, header+
			"E1,测试甲,13800000001,,,411002,刷单返利,high,2026-11-27 09:30:15,2026-11-28 09:30\n"+
			"E2,测试乙,13800000002,,,411002,刷单返利,high,2026-11-27 09:30,\n"+
			"E3,测试丙,13800000003,,,411002,刷单返利,high,2026/11/27 9:30,\n"+
			"E4,测试丁,13800000004,,,411002,刷单返利,high,2026-11-27T09:30:00+08:00,\n"+
			"E5,测试戊,13800000005,,,411002,刷单返利,high,2026-11-27T01:30:00Z,\n")
		want := time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC)
		if got := MustValid(t, rows[0]).WarnedAt; !got.Equal(want.Add(15 * time.Second)) {
			t.Errorf("row 1: warned_at = %v", got)
		}
		if got := rows[0].Warning.Deadline; got == nil || !got.Equal(want.Add(24*time.Hour)) {
			t.Errorf("row 1: deadline = %v", got)
		}
		for _, row := range rows[1:] {
			if got := MustValid(t, row).WarnedAt; !got.Equal(want) {
				t.Errorf("row %d: warned_at = %v, want %v", row.Num, got, want)
			}
			if row.Warning.Deadline != nil {
				t.Errorf("row %d: deadline = %v, want none", row.Num, row.Warning.Deadline)
			}
		}
	})

	t.Run("BadRowsNumbered", func(t *testing.T) {
		rows := MustParse(t, header+
			"E1,测试甲,13800000001,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+ // 1 good
			"E2,测试乙,13800000002,,,41100,刷单返利,high,2026-11-27T01:00:00Z,\n"+ // 2 bad unit
			"E3,测试丙,13800000003,,,411002,刷单返利,high,2026-11-27T01:00:00Z\n"+ // 3 one cell short
			"E4,测试丁,13800000004,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+ // 4 good
			"E5,测试戊,13800000005,,,411002,刷单返利,high,27/11/2026,\n"+ // 5 bad time
			"E6,测试己,13800000006,,,411002,刷单返利,high,,\n"+ // 6 no warned_at
			"E7,测试庚,13800000007,,,411002,刷单返利,high,2026-11-28T01:00:00Z,\n"+ // 7 future
			"E8,测试辛,,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+ // 8 unreachable
			",测试壬,13800000009,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+ // 9 no id
			"E10,测试癸,13800000010,,,411002,刷单返利,high,2026-11-27T09:00:00+08:00,2026-11-27 08:00\n"+ // 10 deadline before warned_at
			"E11,测试子,13800000011,,,411002,刷单返利,high,2026-11-27T01:00:00Z,tomorrow\n"+ // 11 bad deadline
			"E12,测试丑,13800000012,,,411002,刷单返利,high,2026-11-27T01:00:00Z,,extra\n"+ // 12 one cell long
			"E13,测试寅,13800000013,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n") // 13 good
		if len(rows) != 13 {
			t.Fatalf("got %d rows, want 13", len(rows))
		}
		for i, row := range rows {
			if row.Num != i+1 || row.Line != i+2 {
				t.Errorf("row %d: Num = %d, Line = %d", i+1, row.Num, row.Line)
			}
		}
		for _, i := range []int{0, 3, 12} {
			MustValid(t, rows[i])
		}
		AssertRowErr(t, rows[1], 2, "unit")
		AssertRowErr(t, rows[2], 3, "")
		AssertRowErr(t, rows[4], 5, "warned_at")
		AssertRowErr(t, rows[5], 6, "warned_at")
		AssertRowErr(t, rows[6], 7, "warned_at")
		AssertRowErr(t, rows[7], 8, "phone")
		AssertRowErr(t, rows[8], 9, "external_id")
		AssertRowErr(t, rows[9], 10, "deadline")
		AssertRowErr(t, rows[10], 11, "deadline")
		AssertRowErr(t, rows[11], 12, "")
		if rows[7].Warning.ExternalID != "E8" {
			t.Errorf("a bad row keeps what was read: external_id = %q", rows[7].Warning.ExternalID)
		}
	})

	t.Run("RowErrorsNeverQuoteCells", func(t *testing.T) {
		rows := MustParse(t, header+"E1,测试甲,13800000001,,,411002,刷单返利,high,not-a-time-测试甲,\n")
		if strings.Contains(rows[0].Err.Message, "测试甲") {
			t.Fatalf("message quotes a cell: %q", rows[0].Err.Message)
		}
	})

	t.Run("NotUTF8", func(t *testing.T) {
		rows := MustParse(t, header+"E1,\xb2\xe2\xca\xd4,13800000001,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n")
		AssertRowErr(t, rows[0], 1, "name")
	})

	t.Run("ColumnOrderAndUnknownColumns", func(t *testing.T) {
		rows := MustParse(t, "序号, Risk ,unit,warned_at,fraud_type,name,address,external_id,note\n"+
			"1,low,411002001001,2026-11-27 08:00,冒充客服,测试甲,春秋社区3号楼,E1,call after 6pm\n")
		w := MustValid(t, rows[0])
		if w.Risk != "low" || w.Unit != "411002001001" || w.Address != "春秋社区3号楼" || w.ExternalID != "E1" || w.Phone != "" {
			t.Fatalf("got %+v", w)
		}
	})

	t.Run("QuotedFields", func(t *testing.T) {
		rows := MustParse(t, header+
			"E1,\"测试,甲\",13800000001,,\"王庄村3组12号,\n东头\"\"老槐树\"\"下\",411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+
			"E2,测试乙,13800000002,,,411002,\"冒充熟人/领导\",high,2026-11-27T01:00:00Z,\n")
		w := MustValid(t, rows[0])
		if w.Name != "测试,甲" || w.Address != "王庄村3组12号,\n东头\"老槐树\"下" {
			t.Fatalf("name %q, address %q", w.Name, w.Address)
		}
		if w := MustValid(t, rows[1]); w.FraudType != "冒充熟人/领导" {
			t.Fatalf("fraud_type %q", w.FraudType)
		}
		if rows[0].Line != 2 || rows[1].Line != 4 {
			t.Fatalf("lines %d, %d; want 2, 4", rows[0].Line, rows[1].Line)
		}
	})

	t.Run("BadQuotingIsThatRowsError", func(t *testing.T) {
		rows := MustParse(t, header+
			"E1,测试\"甲,13800000001,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n"+
			"E2,测试乙,13800000002,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n")
		if len(rows) != 2 {
			t.Fatalf("got %d rows, want 2", len(rows))
		}
		AssertRowErr(t, rows[0], 1, "")
		MustValid(t, rows[1])
	})

	t.Run("HeaderOnly", func(t *testing.T) {
		if rows := MustParse(t, header); len(rows) != 0 {
			t.Fatalf("got %d rows", len(rows))
		}
	})

	t.Run("BlankLinesSkipped", func(t *testing.T) {
		rows := MustParse(t, header+"\n"+"E1,测试甲,13800000001,,,411002,刷单返利,high,2026-11-27T01:00:00Z,\n\n")
		if len(rows) != 1 || rows[0].Num != 1 || rows[0].Line != 3 {
			t.Fatalf("got %+v", rows)
		}
	})
}

func TestParseCSV_WholeFileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, input, field string
	}{
		{"Empty", "", ""},
		{"OnlyBOM", "\uFEFF", ""},
		{"MissingUnit", "external_id,name,phone,fraud_type,risk,warned_at\nE1,测试甲,138,刷单返利,high,2026-11-27 08:00\n", "unit"},
		{"MissingExternalID", "name,phone,unit,fraud_type,risk,warned_at\n", "external_id"},
		{"MissingWarnedAt", "external_id,name,phone,unit,fraud_type,risk\n", "warned_at"},
		{"NoPhoneNorAddress", "external_id,name,unit,fraud_type,risk,warned_at\n", "phone"},
		{"DuplicateColumn", "external_id,name,phone,unit,fraud_type,risk,warned_at,Unit\n", "unit"},
		{"BadHeader", "external_id,\"name\"x,phone\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := feed.ParseCSV(strings.NewReader(tt.input), now)
			if rows != nil {
				t.Errorf("rows = %v, want none", rows)
			}
			e := syncproto.AsError(err)
			if e == nil || e.Code != syncproto.CodeInvalidRequest {
				t.Fatalf("err = %v, want invalid_request", err)
			}
			if tt.field != "" && e.Details["field"] != tt.field {
				t.Fatalf("field = %v, want %q (%v)", e.Details["field"], tt.field, e)
			}
		})
	}

	t.Run("TooManyRows", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(header)
		for range feed.MaxRows {
			b.WriteString("x\n")
		}
		rows := MustParse(t, b.String())
		if len(rows) != feed.MaxRows {
			t.Fatalf("at the cap: got %d rows", len(rows))
		}
		b.WriteString("x\n")
		_, err := feed.ParseCSV(strings.NewReader(b.String()), now)
		if code := syncproto.ErrorCode(err); code != syncproto.CodePayloadTooLarge {
			t.Fatalf("err = %v, want payload_too_large", err)
		}
	})

	t.Run("ReadError", func(t *testing.T) {
		boom := errors.New("connection reset")
		_, err := feed.ParseCSV(&failingReader{data: header, err: boom}, now)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want it to wrap %v", err, boom)
		}
	})
}

// failingReader returns data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestParseCSV_Golden reads testdata/feed.csv, shaped like a spreadsheet
// export: byte order mark, CRLF, extra columns, a cell spanning lines,
// Chinese risks and Beijing times.
func TestParseCSV_Golden(t *testing.T) {
	f, err := os.Open("testdata/feed.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := feed.ParseCSV(f, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("got %d rows, want 6", len(rows))
	}
	deadline := time.Date(2026, 11, 28, 2, 5, 0, 0, time.UTC)
	want := []syncproto.FeedWarning{
		{
			ExternalID: "GJFZ-20261127-000001", Name: "测试甲", Phone: "13800000001", IDTail: "123X",
			Address: "建安区尚集镇王庄村3组12号", Unit: "411003100201", FraudType: "刷单返利", Risk: "high",
			WarnedAt: time.Date(2026, 11, 27, 1, 30, 0, 0, time.UTC),
		},
		{
			ExternalID: "GJFZ-20261127-000002", Name: "测试乙", IDTail: "0042",
			Address: "魏都区西大街街道春秋社区5号楼, 2单元", Unit: "411002001001", FraudType: "冒充客服", Risk: "medium",
			WarnedAt: time.Date(2026, 11, 27, 2, 5, 0, 0, time.UTC), Deadline: &deadline,
		},
		{
			ExternalID: "GJFZ-20261127-000003", Name: "测试丙", Phone: "13900000003",
			Unit: "4110", FraudType: "虚假投资理财", Risk: "low",
			WarnedAt: time.Date(2026, 11, 27, 0, 5, 0, 0, time.UTC),
		},
	}
	for i, w := range want {
		if d := SameWarning(MustValid(t, rows[i]), w); d != "" {
			t.Errorf("row %d: %s", i+1, d)
		}
	}
	if rows[2].Line != 5 {
		t.Errorf("row 3 starts on line %d, want 5 (row 2 spans two lines)", rows[2].Line)
	}
	AssertRowErr(t, rows[3], 4, "unit")
	AssertRowErr(t, rows[4], 5, "risk")
	AssertRowErr(t, rows[5], 6, "warned_at")
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"", "2026-13-01 00:00", "9999-12-31T23:00:00-05:00", "2026-11-27 25:00", "1732700000"} {
		if got, ok := feed.ParseTime(s); ok {
			t.Errorf("ParseTime(%q) = %v, want failure", s, got)
		}
	}
	got, ok := feed.ParseTime("2026-11-27 09:30:00.5")
	if want := time.Date(2026, 11, 27, 1, 30, 0, 5e8, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("fractional seconds: got %v, %v", got, ok)
	}
}
