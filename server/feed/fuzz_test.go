package feed_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/server/feed"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FuzzParseCSV checks that ParseCSV never panics, that every row it returns
// either validates or carries an invalid_request, that whole-file errors are
// protocol errors, and that the valid rows survive WriteCSV and ParseCSV
// again unchanged.
func FuzzParseCSV(f *testing.F) {
	golden, err := os.ReadFile("testdata/feed.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	var buf bytes.Buffer
	if err := feed.WriteCSV(&buf, sampleWarnings()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(""))
	f.Add([]byte("\uFEFF" + header))
	f.Add([]byte(header + "E1,测试甲,13800000001,,,411002,刷单返利,高,2026-11-27 09:30,\n"))
	f.Add([]byte(header + "E1,\"a\"\"b\nc\",,,x,4110,t,low,2026-11-27T01:00:00+08:00,2026-11-28 01:00\r\n\"unterminated"))
	f.Add([]byte("risk,unit,name,external_id,address,warned_at,fraud_type\nlow,411002001001,n,e,a,2026/1/2 3:04,t\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := feed.ParseCSV(bytes.NewReader(data), now)
		if err != nil {
			if code := syncproto.ErrorCode(err); code != syncproto.CodeInvalidRequest && code != syncproto.CodePayloadTooLarge {
				t.Fatalf("whole-file error %v has code %q", err, code)
			}
			if rows != nil {
				t.Fatalf("whole-file error with %d rows", len(rows))
			}
			return
		}
		var valid []syncproto.FeedWarning
		for i, row := range rows {
			if row.Num != i+1 {
				t.Fatalf("row %d numbered %d", i+1, row.Num)
			}
			if row.Err != nil {
				if row.Err.Code != syncproto.CodeInvalidRequest {
					t.Fatalf("row %d: code %q", row.Num, row.Err.Code)
				}
				continue
			}
			if verr := row.Warning.Validate(now); verr != nil {
				t.Fatalf("row %d has no error but does not validate: %v", row.Num, verr)
			}
			valid = append(valid, row.Warning)
		}

		var out bytes.Buffer
		if err := feed.WriteCSV(&out, valid); err != nil {
			t.Fatalf("WriteCSV: %v", err)
		}
		again, err := feed.ParseCSV(&out, now)
		if err != nil {
			t.Fatalf("ParseCSV of WriteCSV output: %v", err)
		}
		if len(again) != len(valid) {
			t.Fatalf("round trip: %d rows, want %d", len(again), len(valid))
		}
		for i, row := range again {
			if row.Err != nil {
				t.Fatalf("round trip row %d: %v", row.Num, row.Err)
			}
			if d := SameWarning(row.Warning, valid[i]); d != "" {
				t.Fatalf("round trip row %d: %s", row.Num, d)
			}
		}
	})
}
